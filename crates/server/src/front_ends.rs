//! Trusted front ends: TLS-terminating proxies (nginx, haproxy, Envoy, a load balancer) that
//! forward a device's client certificate to the device listener in a header.
//!
//! This module owns the validated policy ([`FrontEnds`]: which source addresses are trusted,
//! which header forms are accepted, the certificate a front end must present on its own
//! connection) and the pure parsers of the header forms ([`parse`]). It reads no request:
//! [`crate::http::client_identity`] is the only place that reads forwarded-certificate headers.
//!
//! Defaults deny: with `front_ends.trusted` empty (the default) no source is trusted and every
//! forwarded-certificate header is refused. A forwarded certificate is never taken on the
//! proxy's word: it is parsed here and verified by [`crate::tls::TrustStore::verify`] like a
//! certificate presented in the TLS handshake; revocation is then enforced by the domain.
//!
//! Header forms (names are matched case-insensitively):
//!
//! | header | form |
//! |---|---|
//! | `client-cert` | RFC 9440: `:<base64 DER>:` (a structured-field byte sequence) |
//! | `x-ssl-client-cert` | nginx `$ssl_client_escaped_cert` (URL-escaped PEM) **or** haproxy `%[ssl_c_der,base64]` (base64 DER) |
//! | `x-forwarded-client-cert` | Envoy: one element `By=...;Hash=...;Cert="<URL-escaped PEM>"` |
//!
//! `x-ssl-client-cert` carries two forms, told apart without guessing: a PEM value begins with
//! `-----BEGIN` (the dashes survive URL escaping), and `-` is not in the base64 alphabet, so a
//! base64 DER value can never begin that way. An empty header value counts as absent (nginx
//! sends an empty value when the client presented no certificate).

use base64::Engine as _;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest forwarded-certificate header value accepted (a certificate chain, escaped).
pub const MAX_HEADER_LEN: usize = 32 * 1024;

/// A header form carrying a forwarded client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderForm {
    /// RFC 9440 `Client-Cert: :<base64 DER>:`.
    Rfc9440,
    /// `X-SSL-Client-Cert`: nginx URL-escaped PEM or haproxy base64 DER.
    SslClientCert,
    /// Envoy `X-Forwarded-Client-Cert`.
    Xfcc,
}

impl HeaderForm {
    pub const ALL: [HeaderForm; 3] = [
        HeaderForm::Rfc9440,
        HeaderForm::SslClientCert,
        HeaderForm::Xfcc,
    ];

    /// The header name (lower case).
    pub fn header_name(self) -> &'static str {
        match self {
            HeaderForm::Rfc9440 => "client-cert",
            HeaderForm::SslClientCert => "x-ssl-client-cert",
            HeaderForm::Xfcc => "x-forwarded-client-cert",
        }
    }

    pub fn from_name(name: &str) -> Option<HeaderForm> {
        HeaderForm::ALL
            .into_iter()
            .find(|f| f.header_name().eq_ignore_ascii_case(name.trim()))
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = ();
    /// `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<Cidr, ()> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| ())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| ())?
            }
            Some(_) => return Err(()),
            None => max,
        };
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A v4 peer seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The validated `[front_ends]` configuration.
#[derive(Debug, Clone, Default)]
pub struct FrontEnds {
    trusted: Vec<Cidr>,
    accepted: Vec<HeaderForm>,
    cert_sha256: Option<[u8; 32]>,
}

impl FrontEnds {
    /// Validates the configuration section; the error is one line naming the key.
    pub fn new(
        trusted: &[String],
        headers: &[String],
        client_cert_sha256: &str,
    ) -> Result<FrontEnds, String> {
        let trusted = trusted
            .iter()
            .map(|t| {
                t.parse::<Cidr>().map_err(|_| {
                    format!(
                        "front_ends.trusted: {t:?} is not an IP address or network like 10.0.0.0/8"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut accepted = Vec::new();
        for h in headers {
            let form = HeaderForm::from_name(h).ok_or_else(|| {
                let known: Vec<&str> = HeaderForm::ALL.iter().map(|f| f.header_name()).collect();
                format!(
                    "front_ends.headers: {h:?} is not one of {}",
                    known.join(", ")
                )
            })?;
            if !accepted.contains(&form) {
                accepted.push(form);
            }
        }
        let fp = client_cert_sha256.trim();
        let cert_sha256 = if fp.is_empty() {
            None
        } else {
            let hexits: String = fp.chars().filter(|c| *c != ':').collect();
            let bytes = hex::decode(&hexits).ok().filter(|b| b.len() == 32);
            let Some(bytes) = bytes else {
                return Err(format!(
                    "front_ends.client_cert_sha256: {fp:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
                ));
            };
            let mut a = [0u8; 32];
            a.copy_from_slice(&bytes);
            Some(a)
        };
        if cert_sha256.is_some() && trusted.is_empty() {
            return Err(
                "front_ends.client_cert_sha256: set front_ends.trusted too (the front end's addresses)"
                    .into(),
            );
        }
        Ok(FrontEnds {
            trusted,
            accepted,
            cert_sha256,
        })
    }

    /// Whether the certificate a peer presented in the TLS handshake is the configured front
    /// end's certificate (which authenticates the proxy, never a device).
    pub fn is_front_end_cert(&self, ee_der: &[u8]) -> bool {
        match &self.cert_sha256 {
            Some(want) => {
                let got = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ee_der);
                got.as_ref() == want.as_slice()
            }
            None => false,
        }
    }

    /// Whether a connection from `peer` is a trusted front end: its address is listed and,
    /// when a front-end certificate is configured, it presented that certificate.
    pub fn trusts(&self, peer: IpAddr, presented_front_end_cert: bool) -> bool {
        self.trusted.iter().any(|c| c.contains(peer))
            && (self.cert_sha256.is_none() || presented_front_end_cert)
    }

    /// Whether a trusted front end may use this header form.
    pub fn accepts(&self, form: HeaderForm) -> bool {
        self.accepted.contains(&form)
    }

    /// Whether any front end is trusted at all.
    pub fn any_trusted(&self) -> bool {
        !self.trusted.is_empty()
    }
}

/// Parses a forwarded-certificate header value into a DER chain (end entity first).
/// The value is non-empty and already trimmed by the caller.
pub fn parse(form: HeaderForm, value: &str) -> Result<Vec<Vec<u8>>, String> {
    if value.len() > MAX_HEADER_LEN {
        return Err(format!("longer than {MAX_HEADER_LEN} bytes"));
    }
    match form {
        HeaderForm::Rfc9440 => parse_rfc9440(value).map(|d| vec![d]),
        HeaderForm::SslClientCert => {
            if value.starts_with("-----BEGIN") {
                pem_chain(&ferrocore_proto::percent::decode(value)?)
            } else {
                base64_der(value).map(|d| vec![d])
            }
        }
        HeaderForm::Xfcc => parse_xfcc(value),
    }
}

/// RFC 9440: a structured-field byte sequence `:<base64>:`.
fn parse_rfc9440(v: &str) -> Result<Vec<u8>, String> {
    let inner = v
        .strip_prefix(':')
        .and_then(|r| r.strip_suffix(':'))
        .ok_or("must be a byte sequence :<base64 DER>:")?;
    base64_der(inner)
}

/// Standard-alphabet base64 (padding optional, as RFC 8941 parsers allow).
fn base64_der(v: &str) -> Result<Vec<u8>, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let der = engine
        .decode(v)
        .map_err(|_| "not base64-encoded DER".to_owned())?;
    if der.first() != Some(&0x30) {
        return Err("not a DER certificate".into());
    }
    Ok(der)
}

/// The `CERTIFICATE` blocks of PEM text, in order. Line breaks may have been replaced by
/// spaces (some proxies do): whitespace inside a block is ignored.
fn pem_chain(text: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text.trim();
    let mut chain = Vec::new();
    while !rest.is_empty() {
        let body = rest
            .strip_prefix(BEGIN)
            .ok_or("not a PEM certificate (-----BEGIN CERTIFICATE-----)")?;
        let (b64, after) = body
            .split_once(END)
            .ok_or("PEM certificate without END line")?;
        let b64: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        chain.push(base64_der(&b64)?);
        rest = after.trim_start();
    }
    if chain.is_empty() {
        return Err("no PEM certificate".into());
    }
    Ok(chain)
}

/// Envoy `x-forwarded-client-cert`: exactly one element whose `Cert` field holds the
/// URL-escaped PEM. Several elements (proxies appending to each other) are refused:
/// configure the edge proxy to sanitize and set the header (`SANITIZE_SET`).
fn parse_xfcc(v: &str) -> Result<Vec<Vec<u8>>, String> {
    let elements = split_unquoted(v, ',')?;
    if elements.len() != 1 {
        return Err(format!(
            "{} elements; exactly one is accepted (sanitize and set the header at the edge proxy)",
            elements.len()
        ));
    }
    let mut cert = None;
    for pair in split_unquoted(&elements[0], ';')? {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("field {pair:?} is not key=value"))?;
        if key.trim().eq_ignore_ascii_case("cert") {
            if cert.is_some() {
                return Err("more than one Cert field".into());
            }
            cert = Some(unquote(value.trim())?);
        }
    }
    let cert = cert.ok_or("no Cert field (enable forwarding of the certificate itself)")?;
    pem_chain(&ferrocore_proto::percent::decode(&cert)?)
}

/// Splits on `sep` outside double quotes (`\"` escapes a quote inside them).
fn split_unquoted(v: &str, sep: char) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in v.chars() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    if quoted || escaped {
        return Err("unterminated quoted value".into());
    }
    parts.push(cur);
    Ok(parts)
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        return Ok(v.to_owned());
    };
    let inner = inner.strip_suffix('"').ok_or("unterminated quoted value")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next().ok_or("dangling escape")?);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A syntactically valid DER prefix is all the parsers check; verification is elsewhere.
    const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x01];

    fn b64(d: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(d)
    }

    fn pem(d: &[u8]) -> String {
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(d)
        )
    }

    fn escape(s: &str) -> String {
        ferrocore_proto::percent::encode(s)
    }

    #[test]
    fn rfc9440() {
        let v = format!(":{}:", b64(DER));
        assert_eq!(parse(HeaderForm::Rfc9440, &v).unwrap(), vec![DER.to_vec()]);
        let unpadded = format!(":{}:", b64(DER).trim_end_matches('='));
        assert_eq!(
            parse(HeaderForm::Rfc9440, &unpadded).unwrap(),
            vec![DER.to_vec()]
        );
        for bad in [
            b64(DER),
            format!(":{}", b64(DER)),
            ":!!!:".into(),
            "::".into(),
            format!(":{}:", b64(b"hello")),
        ] {
            assert!(parse(HeaderForm::Rfc9440, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nginx_escaped_pem_and_haproxy_base64_der_share_a_header() {
        let two = format!("{}{}", pem(DER), pem(&[0x30, 0x00]));
        assert_eq!(
            parse(HeaderForm::SslClientCert, &escape(&pem(DER))).unwrap(),
            vec![DER.to_vec()]
        );
        assert_eq!(
            parse(HeaderForm::SslClientCert, &escape(&two))
                .unwrap()
                .len(),
            2
        );
        // Line breaks replaced by spaces (not escaped).
        let spaced = pem(DER).replace('\n', " ");
        assert_eq!(
            parse(HeaderForm::SslClientCert, &spaced).unwrap(),
            vec![DER.to_vec()]
        );
        assert_eq!(
            parse(HeaderForm::SslClientCert, &b64(DER)).unwrap(),
            vec![DER.to_vec()]
        );
        for bad in [
            "-----BEGIN CERTIFICATE-----%0AAAAA".to_owned(),
            "-----BEGIN CERTIFICATE-----%ZZ".into(),
            "-----BEGIN CERTIFICATE-----%0".into(),
            escape(&pem(b"not der")),
            escape("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            "%2D%2D%2D".into(),
            "not base64!".into(),
            b64(b"plain text"),
            "x".repeat(MAX_HEADER_LEN + 1),
        ] {
            let r = parse(HeaderForm::SslClientCert, &bad);
            assert!(r.is_err(), "{bad:.60}: {r:?}");
        }
    }

    #[test]
    fn envoy_xfcc() {
        let v = format!(
            "By=spiffe://mdm/ferrocore;Hash=abc;Cert=\"{}\";Subject=\"CN=a,O=b\";URI=",
            escape(&pem(DER))
        );
        assert_eq!(parse(HeaderForm::Xfcc, &v).unwrap(), vec![DER.to_vec()]);
        let unquoted = format!("Hash=abc;cert={}", escape(&pem(DER)));
        assert_eq!(
            parse(HeaderForm::Xfcc, &unquoted).unwrap(),
            vec![DER.to_vec()]
        );
        let c = escape(&pem(DER));
        for bad in [
            "By=x;Hash=abc".to_owned(),
            format!("Cert=\"{c}\",Cert=\"{c}\""),
            format!("Cert=\"{c}\";Cert=\"{c}\""),
            format!("Cert=\"{c}"),
            "Cert".into(),
            "Cert=\"abc\"".into(),
            "Subject=\"CN=a\\\"".into(),
        ] {
            let r = parse(HeaderForm::Xfcc, &bad);
            assert!(r.is_err(), "{bad:.60}: {r:?}");
        }
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "::/129",
            "1.2.3.4/+8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_defaults_deny() {
        let none = FrontEnds::default();
        assert!(!none.trusts("127.0.0.1".parse().unwrap(), true));
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let fe = FrontEnds::new(&s(&["127.0.0.1/32"]), &s(&["Client-Cert"]), "").unwrap();
        assert!(fe.trusts("127.0.0.1".parse().unwrap(), false));
        assert!(!fe.trusts("127.0.0.2".parse().unwrap(), false));
        assert!(fe.accepts(HeaderForm::Rfc9440));
        assert!(!fe.accepts(HeaderForm::SslClientCert));
        let fp = "ab".repeat(32);
        let fe = FrontEnds::new(&s(&["127.0.0.1"]), &s(&[]), &fp).unwrap();
        assert!(!fe.trusts("127.0.0.1".parse().unwrap(), false));
        assert!(fe.trusts("127.0.0.1".parse().unwrap(), true));
        for (t, h, f, key) in [
            (s(&["nope"]), s(&[]), "", "front_ends.trusted"),
            (s(&[]), s(&["x-client"]), "", "front_ends.headers"),
            (
                s(&["10.0.0.1"]),
                s(&[]),
                "abcd",
                "front_ends.client_cert_sha256",
            ),
            (s(&[]), s(&[]), fp.as_str(), "front_ends.client_cert_sha256"),
        ] {
            let e = FrontEnds::new(&t, &h, f).unwrap_err();
            assert!(e.starts_with(key), "{e}");
        }
    }
}
