"""PyScep (a real third-party SCEP client) against Ferrocore. Run by
crates/ferrocore/tests/scep_e2e.rs and rsaca_e2e.rs; prints one JSON object.

usage: pyscep_client.py caps URL
       pyscep_client.py enroll URL CHALLENGE CN
       pyscep_client.py access URL CHALLENGE CN
REQUESTS_CA_BUNDLE names the server's CA.

enroll: GetCACaps, GetCACert (PyScep's own check that the RA certificates were issued by
the CA), then a PKCSReq with a fresh RSA key and the challenge; reports the certificates
PyScep chose (recipient, signer, issuer), the enrollment status with the certificate it
decrypted or the failInfo, and the CSR's public key.

access: enroll as above, then GetCert (RFC 8894 3.3.3) for the issued serial signed with the
issued certificate and key ("own"), signed with another key ("foreign") and for an unknown
serial ("unknown"), and GetCRL (3.3.4) for the issued serial; reports each status with the
certificate / the CRL (base64 DER) or the failInfo.
"""
import base64
import json
import sys

from scep import Client
from scep.Client.enums import FailInfo

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
print(json.dumps(out))
