"""PyScep (a real third-party SCEP client) against Ferrocore. Run by
crates/ferrocore/tests/scep_e2e.rs; prints one JSON object.

usage: pyscep_client.py caps URL
       pyscep_client.py enroll URL CHALLENGE CN
REQUESTS_CA_BUNDLE names the server's CA.
"""
import json
import sys

from scep import Client

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
    identity, identity_key = Client.SigningRequest.generate_self_signed(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}
    )
    csr, _key = Client.SigningRequest.generate_csr(
        cn=cn, key_usage={"digital_signature", "key_encipherment"}, password=challenge
    )
    res = client.enrol(csr=csr, identity=identity, identity_private_key=identity_key)
    out["status"] = res.status.name
    if res.status.name == "SUCCESS":
        out["cert_pem"] = res.certificates[0].to_pem().decode()
    elif res.status.name == "FAILURE":
        out["fail_info"] = res.fail_info.name
print(json.dumps(out))
