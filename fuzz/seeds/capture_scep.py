#!/usr/bin/env python3
"""Capture SCEP PKIOperation messages from real clients as fuzz seeds.

A plain-HTTP forwarding proxy on 127.0.0.1: every request is passed to UPSTREAM (an
https:// or http:// SCEP URL, trusted with --ca) unchanged and answered with upstream's
reply; each PKIOperation message (POST body, or the base64 `message=` of a GET) is written
to OUT/<prefix>-<n>.der. The port it listens on is printed on the first stdout line.

    capture_scep.py --upstream https://127.0.0.1:8443/scep --ca ca.pem --out DIR --prefix scepclient

The test `capture_scep_fuzz_seeds` (crates/ferrocore/tests/e2e/scep_renew.rs, ignored by
default) runs micromdm's scepclient and certmonger through it against a real server and
refreshes fuzz/seeds/scep_message/ (see fuzz/seeds/README.md).
"""
import argparse
import base64
import http.server
import os
import ssl
import sys
import threading
import urllib.parse
import urllib.request

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--ca")
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix", default="msg")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ctx = ssl.create_default_context(cafile=args.ca) if args.ca else None
    lock = threading.Lock()
    count = [0]

    def save(der):
        with lock:
            count[0] += 1
            name = os.path.join(args.out, "%s-%d.der" % (args.prefix, count[0]))
        with open(name, "wb") as f:
            f.write(der)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *a):
            pass

        def forward(self, body):
            query = urllib.parse.urlsplit(self.path).query
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            if params.get("operation") == ["PKIOperation"]:
                if body:
                    save(body)
                elif "message" in params:
                    save(base64.b64decode(params["message"][0].replace(" ", "+")))
            url = args.upstream + ("?" + query if query else "")
            req = urllib.request.Request(url, data=body, method=self.command)
            ct = self.headers.get("Content-Type")
            if ct:
                req.add_header("Content-Type", ct)
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                    status, headers, data = r.status, r.headers, r.read()
            except urllib.error.HTTPError as e:
                status, headers, data = e.code, e.headers, e.read()
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.forward(None)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            self.forward(self.rfile.read(n))

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()

if __name__ == "__main__":
    sys.exit(main())
