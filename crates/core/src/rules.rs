//! The mutual-authentication rules of the spec (Tables 2 and 4), as one pure function.
//!
//! [`decide`] answers, for a client (platform, kind, version), the state of the
//! mutual-authentication setting and the device's history, which listener the device uses
//! and whether it authenticates with a client certificate. Nothing else in Ferrocore encodes
//! these rules: registration, migration and the storefront ask this module.

use ferrocore_proto::{ClientKind, Listener, Platform};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A dotted client version such as `9.8`, `10.1.0.0` or `11.1.0`. Missing components count as 0
/// (so `10.1` equals `10.1.0.0`).
#[derive(Debug, Clone)]
pub struct Version(Vec<u32>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Version {}

impl Version {
    pub fn new(parts: &[u32]) -> Self {
        Version(parts.to_vec())
    }
    fn component(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
    /// `self >= other`, comparing component by component.
    pub fn at_least(&self, other: &[u32]) -> bool {
        self.cmp(&Version::new(other)) != Ordering::Less
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| self.component(i).cmp(&other.component(i)))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    }
}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > 32 {
            return Err(format!("invalid client version {s:?}"));
        }
        let parts: Result<Vec<u32>, _> = s.split('.').map(str::parse::<u32>).collect();
        match parts {
            Ok(p) if p.len() <= 4 => Ok(Version(p)),
            _ => Err(format!(
                "invalid client version {s:?}: expected up to four dot-separated numbers"
            )),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&s.join("."))
    }
}

/// The mutual-authentication setting, as Table 4's columns see it.
///
/// Table 4's third column ("upgrade in which the setting WAS enabled before upgrade") is not
/// modelled: it describes devices an earlier installation registered, and Ferrocore imports
/// none. Its one difference from the second column (an Android agent registered before the
/// switch uses mutual authentication) would put a device that holds no certificate in mutual
/// mode, locking it out; an installation that enabled the setting and was then upgraded
/// keeps `enabled_at` and each device its recorded history, which the second column answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingState {
    /// New installation (or upgrade) where the setting is not enabled.
    NotEnabled,
    /// Enabled by the administrator (it can never be disabled again).
    EnabledAfterInstall,
}

/// When the device registered relative to the setting being enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Registered while the setting was not enabled.
    RegisteredBeforeEnable,
    /// Registered while the setting was enabled (or registering now with it enabled).
    RegisteredAfterEnable,
}

/// What a client does: which listener, and whether it presents a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub listener: Listener,
    pub mutual: bool,
}

const DEVICE_MA: Decision = Decision {
    listener: Listener::Device,
    mutual: true,
};
const DEVICE_NO_MA: Decision = Decision {
    listener: Listener::Device,
    mutual: false,
};
const SYNC_NO_MA: Decision = Decision {
    listener: Listener::SyncTls,
    mutual: false,
};

/// A client that the tables do not describe (e.g. an Android MDM client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub platform: Platform,
    pub kind: ClientKind,
}

/// First iOS agent version that takes part in mutual authentication (Table 4).
pub const IOS_AGENT_MA_MIN: [u32; 2] = [9, 8];
/// First Android agent version that renews its identity certificate and can migrate.
pub const ANDROID_AGENT_RENEWAL_MIN: [u32; 2] = [10, 1];
/// First iOS agent version that renews its identity certificate.
pub const IOS_AGENT_RENEWAL_MIN: [u32; 3] = [11, 1, 0];

/// Tables 2 and 4: the listener and mutual-authentication use of a device client.
///
/// `kind` must be a device-identity client (`agent` or `mdm`); AppConnect follows the device's
/// own decision and the storefront has rules of its own.
pub fn decide(
    platform: Platform,
    kind: ClientKind,
    version: &Version,
    setting: SettingState,
    history: History,
) -> Result<Decision, Unsupported> {
    use ClientKind::*;
    use History::*;
    use Platform::*;
    use SettingState::*;
    let unsupported = Err(Unsupported { platform, kind });
    Ok(match (platform, kind) {
        // Row "Android: Mobile@Work (all versions)".
        (Android, Agent) => match (setting, history) {
            (NotEnabled, _) => SYNC_NO_MA,
            (EnabledAfterInstall, RegisteredAfterEnable) => DEVICE_MA,
            (EnabledAfterInstall, RegisteredBeforeEnable) => SYNC_NO_MA,
        },
        // Rows "iOS: Mobile@Work 9.8+" and "iOS: Mobile@Work prior to 9.8".
        (Ios, Agent) if !version.at_least(&IOS_AGENT_MA_MIN) => SYNC_NO_MA,
        (Ios, Agent) => match (setting, history) {
            (NotEnabled, _) => SYNC_NO_MA,
            (EnabledAfterInstall, RegisteredAfterEnable) => DEVICE_MA,
            (EnabledAfterInstall, RegisteredBeforeEnable) => SYNC_NO_MA,
        },
        // Rows "iOS MDM check-in" and "macOS MDM agent check-in".
        (Ios | Macos, Mdm) => match setting {
            NotEnabled => DEVICE_NO_MA,
            EnabledAfterInstall => DEVICE_MA,
        },
        // Row "macOS: Mobile@Work": always mutual.
        (Macos, Agent) => DEVICE_MA,
        // Row "Windows 10": always mutual, whatever client speaks for it.
        (Windows, Agent | Mdm) => DEVICE_MA,
        _ => return unsupported,
    })
}

/// Whether an agent of this platform and version renews its identity certificate
/// (Android 10.1+, iOS 11.1.0+; macOS and Windows clients are current and renew).
pub fn supports_renewal(platform: Platform, kind: ClientKind, version: &Version) -> bool {
    match (platform, kind) {
        (Platform::Android, ClientKind::Agent) => version.at_least(&ANDROID_AGENT_RENEWAL_MIN),
        (Platform::Ios, ClientKind::Agent) => version.at_least(&IOS_AGENT_RENEWAL_MIN),
        (Platform::Macos | Platform::Windows, _) => true,
        _ => false,
    }
}

/// First Android agent (Mobile@Work) version whose storefront client uses mutual
/// authentication ("Mutual authentication and Apps@Work").
pub const ANDROID_STOREFRONT_MA_MIN: [u32; 2] = [10, 2];

/// How a storefront (Apps@Work) client authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorefrontCredential {
    /// The device's identity certificate (mutual TLS on the storefront listener).
    Certificate,
    /// The user's password (HTTP Basic) for a device the user owns.
    Password,
}

/// The storefront rule of the spec: iOS uses mutual authentication exactly when the
/// storefront setting is `certificate` (the global setting does not matter); Android only when
/// the storefront setting is `certificate`, the global mutual-authentication setting is
/// enabled and the agent is 10.2 or later; everyone else authenticates with the password.
/// macOS and Windows have no storefront client in the spec (Table 1): unsupported.
pub fn storefront_credential(
    platform: Platform,
    storefront_auth: ferrocore_proto::StorefrontAuth,
    mutual_auth_enabled: bool,
    agent_version: &Version,
) -> Result<StorefrontCredential, Unsupported> {
    use StorefrontCredential::*;
    use ferrocore_proto::StorefrontAuth as S;
    Ok(match (platform, storefront_auth) {
        (Platform::Ios, S::Certificate) => Certificate,
        (Platform::Ios, S::Password) => Password,
        (Platform::Android, S::Certificate)
            if mutual_auth_enabled && agent_version.at_least(&ANDROID_STOREFRONT_MA_MIN) =>
        {
            Certificate
        }
        (Platform::Android, _) => Password,
        _ => {
            return Err(Unsupported {
                platform,
                kind: ClientKind::Storefront,
            });
        }
    })
}

#[cfg(test)]
mod storefront_tests {
    use super::*;
    use StorefrontCredential::*;
    use ferrocore_proto::StorefrontAuth::{Certificate as Cert, Password as Pw};

    /// Every row of the storefront rule: platform x storefront setting x global setting x
    /// agent versions around 10.2.
    #[test]
    fn storefront_rule_every_row() {
        #[rustfmt::skip]
        let rows: &[(&str, Platform, ferrocore_proto::StorefrontAuth, bool, &str, StorefrontCredential)] = &[
            ("iOS / password / global off",                 Platform::Ios, Pw,   false, "11.0",     Password),
            ("iOS / password / global on",                  Platform::Ios, Pw,   true,  "11.0",     Password),
            ("iOS / certificate / global off",              Platform::Ios, Cert, false, "9.0",      Certificate),
            ("iOS / certificate / global on",               Platform::Ios, Cert, true,  "12.0",     Certificate),
            ("Android / password / global off / 11",        Platform::Android, Pw,   false, "11",       Password),
            ("Android / password / global on / 11",         Platform::Android, Pw,   true,  "11",       Password),
            ("Android / password / global on / 10.2",       Platform::Android, Pw,   true,  "10.2",     Password),
            ("Android / certificate / global off / 10.2",   Platform::Android, Cert, false, "10.2",     Password),
            ("Android / certificate / global off / 11",     Platform::Android, Cert, false, "11",       Password),
            ("Android / certificate / global on / 10.1.9",  Platform::Android, Cert, true,  "10.1.9",   Password),
            ("Android / certificate / global on / 10.2",    Platform::Android, Cert, true,  "10.2",     Certificate),
            ("Android / certificate / global on / 10.2.0.0",Platform::Android, Cert, true,  "10.2.0.0", Certificate),
            ("Android / certificate / global on / 11",      Platform::Android, Cert, true,  "11",       Certificate),
            ("Android / certificate / global off / 10.1.9", Platform::Android, Cert, false, "10.1.9",   Password),
        ];
        for (name, platform, setting, global, version, expected) in rows {
            let v: Version = version.parse().unwrap_or_else(|e| panic!("{e}"));
            let got = storefront_credential(*platform, *setting, *global, &v)
                .unwrap_or_else(|e| panic!("{name}: unsupported {e:?}"));
            assert_eq!(got, *expected, "row {name}");
        }
    }

    #[test]
    fn storefront_has_no_macos_or_windows_client() {
        let v: Version = "11".parse().unwrap_or_else(|e| panic!("{e}"));
        for p in [Platform::Macos, Platform::Windows] {
            for s in [Pw, Cert] {
                assert!(storefront_credential(p, s, true, &v).is_err(), "{p} {s:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClientKind::*;
    use History::*;
    use Platform::*;
    use SettingState::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// (cell name, platform, kind, version, setting, history, expected port, expected MA)
    type Cell = (
        &'static str,
        Platform,
        ClientKind,
        &'static str,
        SettingState,
        History,
        Listener,
        bool,
    );

    /// One row per cell of Table 4 (and the before/after split inside a cell).
    /// (cell name, platform, kind, version, setting, history, expected port, expected MA)
    #[test]
    fn table_4_every_cell() {
        let p443 = Listener::Device;
        let p9997 = Listener::SyncTls;
        #[rustfmt::skip]
        let cells: &[Cell] = &[
            ("Android M@W / not enabled",                       Android, Agent, "9.0",    NotEnabled, RegisteredBeforeEnable, p9997, false),
            ("Android M@W / not enabled (new device)",          Android, Agent, "11.0",   NotEnabled, RegisteredAfterEnable,  p9997, false),
            ("Android M@W / enabled after install / new",       Android, Agent, "10.1.0", EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
            ("Android M@W / enabled after install / existing",  Android, Agent, "10.1.0", EnabledAfterInstall, RegisteredBeforeEnable, p9997, false),
            ("iOS M@W 9.8+ / not enabled",                      Ios, Agent, "9.8",        NotEnabled, RegisteredBeforeEnable, p9997, false),
            ("iOS M@W 9.8+ / enabled after install / new",      Ios, Agent, "9.8.0.0",    EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
            ("iOS M@W 9.8+ / enabled after install / existing", Ios, Agent, "11.1.0",     EnabledAfterInstall, RegisteredBeforeEnable, p9997, false),
            ("iOS M@W <9.8 / not enabled",                      Ios, Agent, "9.7.9",      NotEnabled, RegisteredBeforeEnable, p9997, false),
            ("iOS M@W <9.8 / enabled after install",            Ios, Agent, "9.7",        EnabledAfterInstall, RegisteredAfterEnable,  p9997, false),
            ("iOS MDM / not enabled",                           Ios, Mdm, "17.0",         NotEnabled, RegisteredBeforeEnable, p443, false),
            ("iOS MDM / enabled after install",                 Ios, Mdm, "17.0",         EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
            ("macOS M@W / not enabled",                         Macos, Agent, "1.0",      NotEnabled, RegisteredBeforeEnable, p443, true),
            ("macOS M@W / enabled after install",               Macos, Agent, "1.0",      EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
            ("macOS MDM / not enabled",                         Macos, Mdm, "14.0",       NotEnabled, RegisteredBeforeEnable, p443, false),
            ("macOS MDM / enabled after install",               Macos, Mdm, "14.0",       EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
            ("Windows 10 / not enabled",                        Windows, Agent, "10.0",   NotEnabled, RegisteredBeforeEnable, p443, true),
            ("Windows 10 / enabled after install",              Windows, Mdm, "10.0",     EnabledAfterInstall, RegisteredAfterEnable,  p443, true),
        ];
        for (name, platform, kind, version, setting, history, listener, mutual) in cells {
            let got = decide(*platform, *kind, &v(version), *setting, *history)
                .unwrap_or_else(|e| panic!("{name}: unsupported {e:?}"));
            assert_eq!(
                got,
                Decision {
                    listener: *listener,
                    mutual: *mutual
                },
                "cell {name}"
            );
        }
    }

    #[test]
    fn clients_outside_the_tables_are_unsupported() {
        for (p, k) in [
            (Android, Mdm),
            (Android, Storefront),
            (Ios, Appconnect),
            (Windows, Storefront),
        ] {
            assert!(
                decide(p, k, &v("1.0"), NotEnabled, RegisteredAfterEnable).is_err(),
                "{p} {k}"
            );
        }
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(v("9.10") > v("9.8"));
        assert!(v("10.1") == v("10.1.0.0"));
        assert!(v("10.0.9") < v("10.1"));
        for bad in ["", "a.b", "1..2", "1.2.3.4.5", "-1", "10.1-beta"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn renewal_support_by_version() {
        assert!(!supports_renewal(Android, Agent, &v("10.0.9")));
        assert!(supports_renewal(Android, Agent, &v("10.1")));
        assert!(!supports_renewal(Ios, Agent, &v("11.0.9")));
        assert!(supports_renewal(Ios, Agent, &v("11.1.0")));
    }
}
