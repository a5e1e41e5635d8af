//! The project's one URL parser: `http(s)://host[:port][/path][?query]`.

use crate::ClientError;
use rustls_pki_types::ServerName;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// Host name or IP literal, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// Path and query, always starting with `/`.
    pub path: String,
}

impl Url {
    /// Parse an `http://` or `https://` URL. Userinfo is rejected; a fragment is dropped.
    pub fn parse(url: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Url(format!("{url:?}: {why}"));
        let prefix = |p: &str| {
            url.get(..p.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(p))
        };
        let (scheme, rest) = if prefix("https://") {
            (Scheme::Https, &url[8..])
        } else if prefix("http://") {
            (Scheme::Http, &url[7..])
        } else {
            return Err(bad("an http:// or https:// URL is needed"));
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
        if host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid host"));
        }
        let port = match port {
            None => scheme.default_port(),
            Some(p) => p.parse::<u16>().map_err(|_| bad("invalid port"))?,
        };
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
            path,
        })
    }

    /// [`Url::parse`], refusing `http://`.
    pub fn parse_https(url: &str) -> Result<Self, ClientError> {
        let u = Self::parse(url)?;
        if u.scheme != Scheme::Https {
            return Err(ClientError::Url(format!(
                "{url:?}: only https:// URLs are supported"
            )));
        }
        Ok(u)
    }

    /// Whether the URL has a query (`?...`).
    pub fn has_query(&self) -> bool {
        self.path.contains('?')
    }

    /// The `Host` header value: `host` or `host:port` (IPv6 in brackets), port omitted when
    /// it is the scheme's default.
    pub fn host_header(&self) -> String {
        let host = self.bracketed_host();
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The origin `scheme://host:port` (no path).
    pub fn origin(&self) -> String {
        format!(
            "{}://{}:{}",
            self.scheme.as_str(),
            self.bracketed_host(),
            self.port
        )
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
        let u = Url::parse("https://example.com:8443/api/v1/checkin?x=1#frag")?;
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 8443);
        assert_eq!(u.path, "/api/v1/checkin?x=1");
        assert_eq!(u.host_header(), "example.com:8443");
        assert!(u.has_query());

        let u = Url::parse("HTTPS://10.0.0.1")?;
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("10.0.0.1", 443, "/")
        );
        assert_eq!(u.host_header(), "10.0.0.1");

        let u = Url::parse("https://[::1]:9997?q")?;
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 9997, "/?q")
        );
        assert_eq!(u.host_header(), "[::1]:9997");
        assert_eq!(u.origin(), "https://[::1]:9997");
        assert!(u.server_name().is_ok());

        let u = Url::parse("http://ca.example/scep")?;
        assert_eq!(
            (u.scheme, u.port, u.path.as_str(), u.host_header().as_str()),
            (Scheme::Http, 80, "/scep", "ca.example")
        );
        assert!(Url::parse_https("http://ca.example").is_err());

        for bad in [
            "ftp://x",
            "https://",
            "http://",
            "https://:80",
            "https://h:notaport",
            "https://u@h",
            "https://[::1",
            "https://h:70000",
            "http://h h/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
