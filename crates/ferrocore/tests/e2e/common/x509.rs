//! The openssl recipes the black-box tests share: P-256 keys with CSRs or self-signed CA
//! certificates, certificates signed by a test CA, EST request bodies and serials.
#![allow(dead_code)]

use super::openssl_ok;
use std::path::{Path, PathBuf};

/// `openssl req -new` with a new P-256 key: writes `key` and the CSR `out` (PEM, or what
/// `extra` asks for, e.g. `["-outform", "DER"]`) in `dir`.
pub fn p256_csr(dir: &Path, key: &str, out: &str, subj: &str, extra: &[&str]) {
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        out,
        "-subj",
        subj,
    ];
    args.extend_from_slice(extra);
    openssl_ok(dir, &args);
}

/// A self-signed P-256 certificate `cert` with its key `key`, valid `days`; `extra` adds
/// options such as `-addext basicConstraints=critical,CA:TRUE`.
pub fn p256_self_signed(dir: &Path, key: &str, cert: &str, subj: &str, days: u32, extra: &[&str]) {
    let days = days.to_string();
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-subj",
        subj,
        "-days",
        &days,
    ];
    args.extend_from_slice(extra);
    openssl_ok(dir, &args);
}

/// A self-signed P-256 CA certificate (basicConstraints CA, keyCertSign and cRLSign).
pub fn p256_ca(dir: &Path, key: &str, cert: &str, subj: &str, days: u32) {
    p256_self_signed(
        dir,
        key,
        cert,
        subj,
        days,
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// `openssl x509 -req`: the CA `ca`/`ca_key` signs `csr` into `out` for `days`, with the
/// extensions of `extfile` (its default section, or `[section]` when given).
pub fn sign_csr(
    dir: &Path,
    csr: &str,
    (ca, ca_key): (&str, &str),
    out: &str,
    days: u32,
    extfile: &str,
    section: Option<&str>,
) {
    let days = days.to_string();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca,
        "-CAkey",
        ca_key,
        "-CAcreateserial",
        "-days",
        &days,
        "-extfile",
        extfile,
        "-out",
        out,
    ];
    if let Some(section) = section {
        args.extend_from_slice(&["-extensions", section]);
    }
    openssl_ok(dir, &args);
}

/// An EST request body (RFC 7030: base64 of the DER CSR with CRLF line breaks) made from the
/// DER CSR `der` in `dir`; returns its path.
pub fn est_body(dir: &Path, der: &str) -> PathBuf {
    let b64 = openssl_ok(dir, &["base64", "-in", der]).stdout;
    let body = dir.join(format!("{der}.b64"));
    std::fs::write(&body, b64.replace('\n', "\r\n")).expect("write EST body");
    body
}

/// The serial of the PEM certificate `cert` (relative to `dir`), lower-case hex as the
/// admin API prints serials.
pub fn serial_of(dir: &Path, cert: &str) -> String {
    let out = openssl_ok(dir, &["x509", "-noout", "-serial", "-in", cert]).stdout;
    out.trim()
        .strip_prefix("serial=")
        .expect("openssl x509 -serial prints serial=")
        .to_ascii_lowercase()
}
