//! A tiny parser for the `https://host[:port][/path][?query]` URLs the client accepts.

use crate::ClientError;
use rustls_pki_types::ServerName;

/// A parsed `https` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl {
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl HttpsUrl {
    /// Parse an `https://` URL. Userinfo is rejected; a fragment is dropped.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Url(format!("{url:?}: {why}"));
        let rest = match url.get(..8) {
            Some(scheme) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
            _ => return Err(bad("only https:// URLs are supported")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.contains('@') {
            return Err(bad("userinfo is not supported"));
        }
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (h, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("unterminated IPv6 literal"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = match port {
            None => 443,
            Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
        };
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(HttpsUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The `Host` header value: `host` or `host:port` (IPv6 in brackets), port omitted when 443.
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The origin `https://host:port` (no path).
    pub fn origin(&self) -> String {
        format!("https://{}:{}", self.bracketed_host(), self.port)
    }

    /// The TLS server name (SNI for DNS names; IP literals are verified against IP SANs).
    pub fn server_name(&self) -> Result<ServerName<'static>, ClientError> {
        ServerName::try_from(self.host.clone())
            .map_err(|e| ClientError::Url(format!("invalid host {:?}: {e}", self.host)))
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() -> Result<(), ClientError> {
        let u = HttpsUrl::parse("https://example.com:8443/api/v1/checkin?x=1#frag")?;
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 8443);
        assert_eq!(u.path, "/api/v1/checkin?x=1");
        assert_eq!(u.host_header(), "example.com:8443");

        let u = HttpsUrl::parse("HTTPS://10.0.0.1")?;
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.0.0.1", 443, "/")
        );
        assert_eq!(u.host_header(), "10.0.0.1");

        let u = HttpsUrl::parse("https://[::1]:9997?q")?;
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9997, "/?q")
        );
        assert_eq!(u.host_header(), "[::1]:9997");
        assert_eq!(u.origin(), "https://[::1]:9997");
        assert!(u.server_name().is_ok());

        for bad in [
            "http://x",
            "https://",
            "https://:80",
            "https://h:notaport",
            "https://u@h",
            "https://[::1",
            "https://h:70000",
        ] {
            assert!(HttpsUrl::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
