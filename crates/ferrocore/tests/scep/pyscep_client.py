"""PyScep (a real third-party SCEP client) against Ferrocore. Run by
crates/ferrocore/tests/scep_e2e.rs and rsaca_e2e.rs; prints one JSON object.

usage: pyscep_client.py caps URL
       pyscep_client.py enroll URL CHALLENGE CN
       pyscep_client.py access URL CHALLENGE CN
       pyscep_client.py txid URL CHALLENGE CN TXID utf8|printable
       pyscep_client.py poll URL CHALLENGE CN DIR
       pyscep_client.py replay URL DIR
REQUESTS_CA_BUNDLE names the server's CA.

enroll: GetCACaps, GetCACert (PyScep's own check that the RA certificates were issued by
the CA), then a PKCSReq with a fresh RSA key and the challenge; reports the certificates
PyScep chose (recipient, signer, issuer), the enrollment status with the certificate it
decrypted or the failInfo, and the CSR's public key.

access: enroll as above, then GetCert (RFC 8894 3.3.3) for the issued serial signed with the
issued certificate and key ("own"), signed with another key ("foreign") and for an unknown
serial ("unknown"), and GetCRL (3.3.4) for the issued serial; reports each status with the
certificate / the CRL (base64 DER) or the failInfo.

txid: a PKCSReq whose transactionID is TXID as a UTF8String or a PrintableString (PyScep
does not check PrintableString's character set), sent twice (the second a retransmission);
reports each outcome (or the HTTP error PyScep raised) and the transactionID of each CertRep
as PyScep parsed it.

poll: enroll as above, then GetCertInitial (CertPoll) for the enrollment's transactionID
signed with the enrolling identity ("own") and with another self-signed identity
("foreign"); saves the identity, its key and the CSR in DIR for replay.

replay: with what poll saved in DIR, GetCertInitial again ("poll") and the same PKCSReq
again ("retransmission").
"""
import base64
import json
import sys

import os

from asn1crypto.core import UTF8String
from scep import Client
from scep.Client import client as client_module
from scep.Client.cryptoutils import hex_digest_for_data
from scep.Client.enums import FailInfo, MessageType
from scep.Client.envelope import PKCSPKIEnvelopeBuilder

mode, url = sys.argv[1], sys.argv[2]
client = Client.Client(url)
caps = client.get_ca_capabilities()
out = {
    "cipher": caps.strongest_cipher(),
    "digest": caps.strongest_message_digest(),
    "post": caps.contains(Client.CACaps.POSTPKIOperation),
    "renewal": caps.contains(Client.CACaps.Renewal),
}


def fail_name(fi):
    # PyScep hands the failInfo attribute over as its raw PrintableString value.
    return fi.name if isinstance(fi, FailInfo) else FailInfo(fi).name


def outcome(res):
    o = {"status": res.status.name}
    if res.status.name == "FAILURE":
        o["fail_info"] = fail_name(res.fail_info)
    elif res.status.name == "SUCCESS":
        if res.certificates:
            o["cert_pem"] = res.certificates[0].to_pem().decode()
        if res.crl is not None:
            o["crl_der_b64"] = base64.b64encode(res.crl._revocation_list.dump()).decode()
    return o


if mode in ("enroll", "access"):
    challenge, cn = sys.argv[3], sys.argv[4]
    try:
        ca_certs = client.get_ca_certs()
    except Exception as e:  # noqa: BLE001 - reported to the test
        out["ca_certs_error"] = str(e)
        print(json.dumps(out))
        sys.exit(0)
    out["ca_certs"] = {
        "count": len(ca_certs.certificates),
        "recipient": ca_certs.recipient.subject.human_friendly,
        "signer": ca_certs.signer.subject.human_friendly,
        "issuer": ca_certs.issuer.subject.human_friendly,
    }
    identity, identity_key = Client.SigningRequest.generate_self_signed(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}
    )
    csr, _key = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge
    )
    out["csr_public_key_pem"] = csr.public_key.to_pem().decode()
    res = client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
    out["status"] = res.status.name
    if res.status.name == "SUCCESS":
        out["cert_pem"] = res.certificates[0].to_pem().decode()
    elif res.status.name == "FAILURE":
        out["fail_info"] = fail_name(res.fail_info)
    if mode == "access" and res.status.name == "SUCCESS":
        issued = res.certificates[0]
        serial = issued.serial_number
        out["get_cert_own"] = outcome(client.get_cert(issued, _key, serial))
        out["get_cert_foreign"] = outcome(client.get_cert(identity, identity_key, serial))
        out["get_cert_unknown"] = outcome(client.get_cert(issued, _key, serial ^ 1))
        out["get_crl"] = outcome(client.get_crl(issued, _key, serial))

# Every CertRep PyScep parses, to report what it echoed.
replies = []
_parse = client_module.SCEPMessage.parse


def _recording_parse(*args, **kwargs):
    msg = _parse(*args, **kwargs)
    replies.append(msg)
    return msg


client_module.SCEPMessage.parse = _recording_parse


def attempt(fn):
    try:
        o = outcome(fn())
    except Exception as e:  # noqa: BLE001 - reported to the test (HTTP 500 raises)
        return {"error": str(e)}
    o["transaction_id"] = replies[-1].transaction_id if replies else None
    return o


def new_identity(cn):
    return Client.SigningRequest.generate_self_signed(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}
    )


if mode == "txid":
    challenge, cn, txid, kind = sys.argv[3:7]
    ca_certs = client.get_ca_certs()
    identity, identity_key = new_identity(cn)
    csr, _key = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge
    )

    def send():
        envelope = PKCSPKIEnvelopeBuilder().encrypt(csr.to_der(), caps.strongest_cipher())
        tx = UTF8String(txid) if kind == "utf8" else txid
        return client._pki_operation(
            identity=identity, identity_private_key=identity_key, envelope=envelope,
            message_type=MessageType.PKCSReq, cacaps=caps, ca_certs=ca_certs,
            transaction_id=tx,
        )

    out["first"] = attempt(send)
    out["retransmission"] = attempt(send)
elif mode == "poll":
    challenge, cn, save = sys.argv[3], sys.argv[4], sys.argv[5]
    identity, identity_key = new_identity(cn)
    csr, _key = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge
    )
    out["enroll"] = attempt(
        lambda: client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
    )
    tx = hex_digest_for_data(data=csr.public_key.to_der(), algorithm="sha1")
    out["enroll_transaction_id"] = tx
    other, other_key = new_identity(cn)
    out["own"] = attempt(lambda: client.poll(identity, identity_key, identity.subject, tx))
    out["foreign"] = attempt(lambda: client.poll(other, other_key, other.subject, tx))
    os.makedirs(save, exist_ok=True)
    with open(os.path.join(save, "identity.pem"), "wb") as f:
        f.write(identity.to_pem())
    with open(os.path.join(save, "identity.key"), "wb") as f:
        f.write(identity_key.to_pem())
    with open(os.path.join(save, "csr.der"), "wb") as f:
        f.write(csr.to_der())
elif mode == "replay":
    save = sys.argv[3]
    with open(os.path.join(save, "identity.pem"), "rb") as f:
        identity = Client.Certificate.from_pem(f.read())
    with open(os.path.join(save, "identity.key"), "rb") as f:
        identity_key = Client.PrivateKey.from_pem(f.read())
    with open(os.path.join(save, "csr.der"), "rb") as f:
        csr = Client.SigningRequest.from_der(f.read())
    tx = hex_digest_for_data(data=csr.public_key.to_der(), algorithm="sha1")
    out["poll"] = attempt(lambda: client.poll(identity, identity_key, identity.subject, tx))
    out["retransmission"] = attempt(
        lambda: client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
    )
print(json.dumps(out))
