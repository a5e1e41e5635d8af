"""PyScep (a real third-party SCEP client) against Ferrocore. Run by
crates/ferrocore/tests/scep_e2e.rs and rsaca_e2e.rs; prints one JSON object.

usage: pyscep_client.py caps URL
       pyscep_client.py enroll URL CHALLENGE CN
REQUESTS_CA_BUNDLE names the server's CA.

enroll: GetCACaps, GetCACert (PyScep's own check that the RA certificates were issued by
the CA), then a PKCSReq with a fresh RSA key and the challenge; reports the certificates
PyScep chose (recipient, signer, issuer), the enrollment status with the certificate it
decrypted or the failInfo, and the CSR's public key.
"""
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
if mode == "enroll":
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
        # PyScep hands the failInfo attribute over as its raw PrintableString value.
        fi = res.fail_info
        out["fail_info"] = fi.name if isinstance(fi, FailInfo) else FailInfo(fi).name
print(json.dumps(out))
