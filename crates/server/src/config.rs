//! Configuration: TOML file plus `FERROCORE_<SECTION>_<KEY>` environment overrides, validated
//! before anything starts. Every invalid value is reported as one line naming its key.
//!
//! The keys under `[server]` and `[listeners]` are a public contract (see README).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub listeners: ListenersSection,
    pub pki: PkiSection,
    pub ca: CaSection,
    pub front_ends: FrontEndsSection,
    /// Directory sources (AD, LDAP) beside the local users ([`crate::directory_ldap`]).
    pub directory: crate::directory_ldap::DirectorySection,
    pub store: StoreSection,
}

/// The database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// The write-ahead log is checkpointed and truncated once it passes this many MiB
    /// (1-65536; default 64). It stays within a small multiple of it under any load.
    #[serde(deserialize_with = "int_or_string")]
    pub wal_limit_mb: i64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            wal_limit_mb: i64::try_from(ferrocore_store::DEFAULT_WAL_LIMIT_MB).unwrap_or(64),
        }
    }
}

impl StoreSection {
    /// The validated limit in bytes; the error is one line naming the key.
    pub fn wal_limit_bytes(&self) -> Result<u64, String> {
        match u64::try_from(self.wal_limit_mb) {
            Ok(mb @ 1..=65536) => Ok(mb << 20),
            _ => Err(format!(
                "store.wal_limit_mb: {} is not a size in MiB (1-65536)",
                self.wal_limit_mb
            )),
        }
    }
}

/// An integer given as a TOML integer or (from the environment) a string.
fn int_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(i64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.trim().parse::<i64>().map_err(|_| {
            serde::de::Error::custom(format!("store.wal_limit_mb: {s:?} is not a number"))
        }),
    }
}

/// The local CA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaSection {
    /// Key algorithm of CAs created from now on (the data directory's CA at first start,
    /// new local-CA enrollment configurations): `ecdsa-p256` (default), `rsa-2048`,
    /// `rsa-3072`, `rsa-4096`. An existing CA is never replaced.
    pub key_algorithm: String,
}

impl Default for CaSection {
    fn default() -> Self {
        CaSection {
            key_algorithm: ferrocore_pki::CaKeyAlgorithm::default().as_str().into(),
        }
    }
}

impl CaSection {
    /// The validated algorithm; the error is one line naming the key.
    pub fn key_algorithm(&self) -> Result<ferrocore_pki::CaKeyAlgorithm, String> {
        self.key_algorithm
            .parse()
            .map_err(|e| format!("ca.key_algorithm: {e}"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Names (DNS or IP) the portal HTTPS certificate must cover.
    pub hostnames: Vec<String>,
    /// Device port announced to devices (check-in endpoint, CRL URL) when a front end
    /// listens on another port than `listeners.device`; unset = the bound device port.
    #[serde(deserialize_with = "port_or_string")]
    pub public_device_port: Option<u16>,
    /// Lifetime of TLS 1.3 session tickets in seconds (resumption without a full handshake;
    /// every request is still checked). At most 604800 (seven days); 0 = no resumption.
    #[serde(deserialize_with = "u32_or_string")]
    pub tls_ticket_lifetime_secs: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenersSection {
    /// Registration and mutual-TLS check-ins (client certificate optional at the TLS layer).
    pub device: String,
    /// Server-auth-only check-ins of legacy devices; `""` disables the listener.
    pub sync_tls: String,
    /// Admin API.
    pub admin: String,
    /// App storefront; must differ from the admin port.
    pub storefront: String,
    /// Plain-HTTP PKI publication (OCSP, CRLs, CA certificates) for relying parties that
    /// fetch AIA / CRL distribution point URLs over HTTP; `""` (default) disables it.
    pub pki: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PkiSection {
    /// URL written into issued certificates' CRL distribution point. Default:
    /// `https://<first hostname>:<device port>/pki/crl.der`.
    pub crl_url: String,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            hostnames: vec!["localhost".into()],
            public_device_port: None,
            tls_ticket_lifetime_secs: crate::tickets::MAX_LIFETIME_SECS,
        }
    }
}

/// Trusted front ends (TLS-terminating proxies forwarding the client certificate in a
/// header); see [`crate::front_ends`]. Defaults deny: no front end is trusted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FrontEndsSection {
    /// Source addresses or networks (`10.0.0.0/8`) of trusted front ends; empty = none.
    pub trusted: Vec<String>,
    /// Header forms a trusted front end may use (`client-cert`, `x-ssl-client-cert`,
    /// `x-forwarded-client-cert`).
    pub headers: Vec<String>,
    /// SHA-256 fingerprint of the TLS client certificate a front end must present on its own
    /// connection to the device listener; empty = the address alone decides.
    pub client_cert_sha256: String,
}

impl Default for FrontEndsSection {
    fn default() -> Self {
        FrontEndsSection {
            trusted: Vec::new(),
            headers: crate::front_ends::HeaderForm::ALL
                .iter()
                .map(|f| f.header_name().to_owned())
                .collect(),
            client_cert_sha256: String::new(),
        }
    }
}

impl FrontEndsSection {
    /// The validated policy; the error is one line naming the key.
    pub fn policy(&self) -> Result<crate::front_ends::FrontEnds, String> {
        crate::front_ends::FrontEnds::new(&self.trusted, &self.headers, &self.client_cert_sha256)
    }
}

/// `server.tls_ticket_lifetime_secs` as a TOML integer or (from the environment) a string.
fn u32_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(i64),
        S(String),
    }
    let n = match N::deserialize(d)? {
        N::N(n) => u32::try_from(n).ok(),
        N::S(s) => s.trim().parse::<u32>().ok(),
    };
    n.ok_or_else(|| {
        serde::de::Error::custom("server.tls_ticket_lifetime_secs: not a whole number of seconds")
    })
}

/// A port given as a TOML integer or (from the environment) a string; `""` = unset.
fn port_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum P {
        N(i64),
        S(String),
    }
    let bad = |v: &dyn std::fmt::Display| {
        serde::de::Error::custom(format!(
            "server.public_device_port: {v} is not a port (1-65535)"
        ))
    };
    match P::deserialize(d)? {
        P::S(s) if s.trim().is_empty() => Ok(None),
        P::S(s) => match s.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(Some(p)),
            _ => Err(bad(&format!("{s:?}"))),
        },
        P::N(n) => match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Some(p)),
            _ => Err(bad(&n)),
        },
    }
}

impl Default for ListenersSection {
    fn default() -> Self {
        ListenersSection {
            device: "0.0.0.0:443".into(),
            sync_tls: "0.0.0.0:9997".into(),
            admin: "0.0.0.0:8443".into(),
            storefront: "0.0.0.0:7443".into(),
            pki: String::new(),
        }
    }
}

/// Keys that can be overridden from the environment, with whether they are lists.
const KEYS: &[(&str, &str, bool)] = &[
    ("server", "hostnames", true),
    ("listeners", "device", false),
    ("listeners", "sync_tls", false),
    ("listeners", "admin", false),
    ("listeners", "storefront", false),
    ("listeners", "pki", false),
    ("pki", "crl_url", false),
    ("ca", "key_algorithm", false),
    ("server", "public_device_port", false),
    ("server", "tls_ticket_lifetime_secs", false),
    ("front_ends", "trusted", true),
    ("front_ends", "headers", true),
    ("front_ends", "client_cert_sha256", false),
    ("store", "wal_limit_mb", false),
    ("directory", "order", true),
];

/// `FERROCORE_*` variables that are not configuration keys but are read elsewhere (the admin
/// CLI, the agent, the public roots of portal-certificate validation); a shell exporting them
/// for those tools may start the server too.
const OTHER_VARIABLES: &[&str] = &[
    "FERROCORE_PUBLIC_ROOTS",
    "FERROCORE_ADMIN_TOKEN",
    "FERROCORE_AGENT_STATE",
    "FERROCORE_PASSWORD",
    "FERROCORE_CONFIG",
];

fn known_sections() -> Vec<&'static str> {
    let mut v: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
    v.dedup();
    v.sort_unstable();
    v.dedup();
    v
}

/// Validated listener addresses.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub device: SocketAddr,
    pub sync_tls: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub storefront: SocketAddr,
    pub pki: Option<SocketAddr>,
}

impl Config {
    /// Reads the file (if any), applies environment overrides from `env`, validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Addresses), String> {
        let mut table: toml::Table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("--config {}: cannot read: {e}", path.display()))?;
                text.parse()
                    .map_err(|e| format!("--config {}: {}", path.display(), one_line(&e)))?
            }
            None => toml::Table::new(),
        };
        let sections: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (name, value) in &env {
            let Some(rest) = name.strip_prefix("FERROCORE_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let found = KEYS.iter().find(|(s, k, _)| rest == format!("{s}_{k}"));
            match found {
                Some((section, key, is_list)) => {
                    let v = if *is_list {
                        toml::Value::Array(
                            value
                                .split(',')
                                .map(|s| s.trim())
                                .filter(|s| !s.is_empty())
                                .map(|s| toml::Value::String(s.into()))
                                .collect(),
                        )
                    } else {
                        toml::Value::String(value.clone())
                    };
                    let entry = table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    match entry {
                        toml::Value::Table(t) => {
                            t.insert(key.to_string(), v);
                        }
                        _ => return Err(format!("{section}: must be a table")),
                    }
                }
                None if sections.iter().any(|s| rest.starts_with(&format!("{s}_"))) => {
                    return Err(format!("{name}: unknown configuration key"));
                }
                None if OTHER_VARIABLES.contains(&name.as_str()) => {}
                None => {
                    return Err(format!(
                        "{name}: unknown FERROCORE_ variable (configuration variables are \
                         FERROCORE_<SECTION>_<KEY> with section one of {}; unset it or fix its name)",
                        known_sections().join(", ")
                    ));
                }
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| format!("configuration: {}", one_line(&e)))?;
        let addrs = config.validate()?;
        Ok((config, addrs))
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<Addresses, String> {
        if self.server.tls_ticket_lifetime_secs > crate::tickets::MAX_LIFETIME_SECS {
            return Err(format!(
                "server.tls_ticket_lifetime_secs: {} is longer than TLS 1.3 allows (at most 604800, seven days; 0 = no tickets)",
                self.server.tls_ticket_lifetime_secs
            ));
        }
        if self.server.hostnames.is_empty() {
            return Err("server.hostnames: at least one hostname is required".into());
        }
        for h in &self.server.hostnames {
            if !valid_hostname(h) {
                return Err(format!(
                    "server.hostnames: {h:?} is not a DNS name or IP address"
                ));
            }
        }
        let parse = |key: &str, v: &str| -> Result<SocketAddr, String> {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("listeners.{key}: {v:?} is not an address like 0.0.0.0:443"))
        };
        let device = parse("device", &self.listeners.device)?;
        let admin = parse("admin", &self.listeners.admin)?;
        let storefront = parse("storefront", &self.listeners.storefront)?;
        let sync_tls = if self.listeners.sync_tls.trim().is_empty() {
            None
        } else {
            Some(parse("sync_tls", &self.listeners.sync_tls)?)
        };
        let pki = if self.listeners.pki.trim().is_empty() {
            None
        } else {
            Some(parse("pki", &self.listeners.pki)?)
        };
        if storefront.port() == admin.port() {
            return Err(format!(
                "listeners.storefront: port {} is the admin port (listeners.admin); the storefront must use another port",
                admin.port()
            ));
        }
        let mut all: Vec<(&str, SocketAddr)> = vec![
            ("device", device),
            ("admin", admin),
            ("storefront", storefront),
        ];
        if let Some(s) = sync_tls {
            all.push(("sync_tls", s));
        }
        if let Some(p) = pki {
            all.push(("pki", p));
        }
        for (i, (ka, a)) in all.iter().enumerate() {
            for (kb, b) in &all[i + 1..] {
                let overlap = a.port() == b.port()
                    && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified());
                if overlap {
                    return Err(format!(
                        "listeners.{kb}: {b} is already used by listeners.{ka}"
                    ));
                }
            }
        }
        let url = &self.pki.crl_url;
        if !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(format!(
                "pki.crl_url: {:?} must be an http:// or https:// URL",
                self.pki.crl_url
            ));
        }
        self.ca.key_algorithm()?;
        self.front_ends.policy()?;
        self.store.wal_limit_bytes()?;
        self.directory.validate()?;
        Ok(Addresses {
            device,
            sync_tls,
            admin,
            storefront,
            pki,
        })
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^' || c == ' ')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn valid_hostname(h: &str) -> bool {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_public_contract() {
        let (c, a) = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.server.hostnames, vec!["localhost"]);
        assert_eq!(a.device.port(), 443);
        assert_eq!(a.sync_tls.map(|s| s.port()), Some(9997));
        assert_eq!(a.admin.port(), 8443);
        assert_eq!(a.storefront.port(), 7443);
        assert_eq!(a.pki, None);
        assert_eq!(c.store.wal_limit_bytes(), Ok(64 << 20));
    }

    #[test]
    fn wal_limit_loads_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[store]\nwal_limit_mb = 16\n").unwrap();
        let (c, _) = Config::load(Some(&f), env(&[])).unwrap();
        assert_eq!(c.store.wal_limit_bytes(), Ok(16 << 20));
        let (c, _) = Config::load(Some(&f), env(&[("FERROCORE_STORE_WAL_LIMIT_MB", "8")])).unwrap();
        assert_eq!(c.store.wal_limit_bytes(), Ok(8 << 20));
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[listeners]\ndevice = \"127.0.0.1:1443\"\n").unwrap();
        let (c, a) = Config::load(
            Some(&f),
            env(&[
                ("FERROCORE_LISTENERS_DEVICE", "127.0.0.1:2443"),
                ("FERROCORE_SERVER_HOSTNAMES", "mdm.example.com, 127.0.0.1"),
                ("FERROCORE_LISTENERS_SYNC_TLS", ""),
                ("FERROCORE_LISTENERS_PKI", "127.0.0.1:8080"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(a.pki.map(|p| p.port()), Some(8080));
        assert_eq!(a.device.port(), 2443);
        assert_eq!(a.sync_tls, None);
        assert_eq!(c.server.hostnames, vec!["mdm.example.com", "127.0.0.1"]);
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("FERROCORE_LISTENERS_STOREFRONT", "0.0.0.0:8443")],
                "listeners.storefront",
            ),
            (
                &[("FERROCORE_LISTENERS_ADMIN", "127.0.0.1:443")],
                "listeners.admin",
            ),
            (
                &[("FERROCORE_LISTENERS_DEVICE", "nonsense")],
                "listeners.device",
            ),
            (
                &[("FERROCORE_SERVER_HOSTNAMES", "bad name!")],
                "server.hostnames",
            ),
            (&[("FERROCORE_SERVER_HOSTNAMES", "")], "server.hostnames"),
            (
                &[("FERROCORE_LISTENERS_DEVISE", "1.2.3.4:5")],
                "FERROCORE_LISTENERS_DEVISE",
            ),
            // A misspelt section is as fatal as a misspelt key.
            (
                &[("FERROCORE_LISTENER_DEVICE", "1.2.3.4:5")],
                "FERROCORE_LISTENER_DEVICE",
            ),
            (&[("FERROCORE_PKI_CRL_URL", "ftp://x")], "pki.crl_url"),
            (
                &[("FERROCORE_LISTENERS_PKI", "0.0.0.0:443")],
                "listeners.pki",
            ),
            (&[("FERROCORE_LISTENERS_PKI", "80")], "listeners.pki"),
            (
                &[("FERROCORE_FRONT_ENDS_TRUSTED", "10.0.0.0/8,bogus")],
                "front_ends.trusted",
            ),
            (
                &[("FERROCORE_FRONT_ENDS_HEADERS", "x-client-cert")],
                "front_ends.headers",
            ),
            (
                &[
                    ("FERROCORE_FRONT_ENDS_TRUSTED", "127.0.0.1"),
                    ("FERROCORE_FRONT_ENDS_CLIENT_CERT_SHA256", "xyz"),
                ],
                "front_ends.client_cert_sha256",
            ),
            (
                &[("FERROCORE_SERVER_PUBLIC_DEVICE_PORT", "70000")],
                "server.public_device_port",
            ),
            (
                &[("FERROCORE_CA_KEY_ALGORITHM", "rsa-1024")],
                "ca.key_algorithm",
            ),
            (&[("FERROCORE_CA_KEY_ALGORITHM", "")], "ca.key_algorithm"),
            (
                &[("FERROCORE_STORE_WAL_LIMIT_MB", "0")],
                "store.wal_limit_mb",
            ),
            (
                &[("FERROCORE_STORE_WAL_LIMIT_MB", "lots")],
                "store.wal_limit_mb",
            ),
            (
                &[("FERROCORE_STORE_WAL_LIMIT_MB", "100000")],
                "store.wal_limit_mb",
            ),
        ];
        for (vars, key) in cases {
            let err = Config::load(None, env(vars)).unwrap_err();
            assert!(err.contains(key), "{vars:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn the_tools_own_variables_are_not_configuration_typos() {
        for name in [
            "FERROCORE_PUBLIC_ROOTS",
            "FERROCORE_ADMIN_TOKEN",
            "FERROCORE_AGENT_STATE",
            "FERROCORE_PASSWORD",
        ] {
            assert!(Config::load(None, env(&[(name, "x")])).is_ok(), "{name}");
        }
        let err = Config::load(None, env(&[("FERROCORE_LISTNERS_ADMIN", "x")])).unwrap_err();
        assert!(
            err.starts_with("FERROCORE_LISTNERS_ADMIN: unknown"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn front_ends_default_to_none_and_load_from_file_and_env() {
        let (c, _) = Config::load(None, env(&[])).unwrap();
        assert!(!c.front_ends.policy().unwrap().any_trusted());
        assert_eq!(c.server.public_device_port, None);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[server]\npublic_device_port = 443\n[front_ends]\ntrusted = [\"10.0.0.0/8\"]\nheaders = [\"client-cert\"]\n",
        )
        .unwrap();
        let (c, _) = Config::load(Some(&f), env(&[])).unwrap();
        assert_eq!(c.server.public_device_port, Some(443));
        assert_eq!(c.front_ends.trusted, vec!["10.0.0.0/8"]);
        let (c, _) = Config::load(
            Some(&f),
            env(&[
                ("FERROCORE_FRONT_ENDS_TRUSTED", "127.0.0.1/32, ::1"),
                ("FERROCORE_SERVER_PUBLIC_DEVICE_PORT", "8443"),
            ]),
        )
        .unwrap();
        assert_eq!(c.front_ends.trusted, vec!["127.0.0.1/32", "::1"]);
        assert_eq!(c.server.public_device_port, Some(8443));
        assert!(c.front_ends.policy().unwrap().any_trusted());
    }

    #[test]
    fn ca_key_algorithm_defaults_to_p256_and_loads_from_file_and_env() {
        use ferrocore_pki::CaKeyAlgorithm;
        let (c, _) = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.ca.key_algorithm(), Ok(CaKeyAlgorithm::EcdsaP256));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[ca]\nkey_algorithm = \"rsa-3072\"\n").unwrap();
        let (c, _) = Config::load(Some(&f), env(&[])).unwrap();
        assert_eq!(c.ca.key_algorithm(), Ok(CaKeyAlgorithm::Rsa3072));
        let (c, _) =
            Config::load(Some(&f), env(&[("FERROCORE_CA_KEY_ALGORITHM", "RSA-4096")])).unwrap();
        assert_eq!(c.ca.key_algorithm(), Ok(CaKeyAlgorithm::Rsa4096));
        std::fs::write(&f, "[ca]\nkey_algoritm = \"rsa-2048\"\n").unwrap();
        let err = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(err.contains("key_algoritm"), "{err}");
    }

    #[test]
    fn unknown_file_keys_and_unreadable_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[listeners]\ndevcie = \"127.0.0.1:1443\"\n").unwrap();
        let err = Config::load(Some(&f), env(&[])).unwrap_err();
        assert!(err.contains("devcie"), "{err}");
        let err = Config::load(Some(&dir.path().join("missing.toml")), env(&[])).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }
}
