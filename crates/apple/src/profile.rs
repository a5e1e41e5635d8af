//! Configuration profiles (`.mobileconfig`, `application/x-apple-aspen-config`):
//! typed payloads serialised with the `plist` crate, [`enrollment_profile`], and
//! [`sign_profile`] (CMS SignedData with the plist embedded, as Apple expects).

use ferrocore_pki::cms::{self, SignerKey};
use plist::Data;
use serde::{Deserialize, Serialize};

use crate::ProfileError;

/// MIME type of a profile download.
pub const PROFILE_CONTENT_TYPE: &str = "application/x-apple-aspen-config";

/// Keys every payload carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadCommon {
    #[serde(rename = "PayloadIdentifier")]
    pub identifier: String,
    #[serde(rename = "PayloadUUID")]
    pub uuid: String,
    #[serde(rename = "PayloadVersion")]
    pub version: u32,
    #[serde(
        rename = "PayloadDisplayName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub display_name: Option<String>,
    #[serde(
        rename = "PayloadDescription",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub description: Option<String>,
    #[serde(
        rename = "PayloadOrganization",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub organization: Option<String>,
}

impl PayloadCommon {
    /// Version 1, a fresh upper-case UUID.
    pub fn new(identifier: impl Into<String>) -> Self {
        PayloadCommon {
            identifier: identifier.into(),
            uuid: new_uuid(),
            version: 1,
            display_name: None,
            description: None,
            organization: None,
        }
    }

    /// With a display name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
}

/// Serialises `Some(v)` as `v`. The `plist` serializer writes an `Option` met
/// inside a map (which `#[serde(flatten)]` and tagged enums produce) as a
/// `{"Some": v}` dictionary; every optional key goes through here instead.
pub(crate) fn some<T: Serialize, S: serde::Serializer>(
    v: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => s.serialize_none(),
    }
}

/// A fresh UUID in the upper-case form Apple's tools write.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// The top level of a profile (`PayloadType` = `Configuration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "PayloadType", rename = "Configuration")]
pub struct Profile {
    #[serde(flatten)]
    pub common: PayloadCommon,
    #[serde(
        rename = "PayloadScope",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub scope: Option<String>,
    #[serde(
        rename = "PayloadRemovalDisallowed",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub removal_disallowed: Option<bool>,
    #[serde(rename = "PayloadContent")]
    pub content: Vec<Payload>,
}

/// One payload of a profile, tagged by `PayloadType`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "PayloadType")]
pub enum Payload {
    #[serde(rename = "com.apple.mdm")]
    Mdm(MdmPayload),
    #[serde(rename = "com.apple.security.scep")]
    Scep(ScepPayload),
    /// A root CA certificate (DER).
    #[serde(rename = "com.apple.security.root")]
    Root(CertificatePayload),
    /// A certificate in PEM or DER.
    #[serde(rename = "com.apple.security.pem")]
    Pem(CertificatePayload),
    #[serde(rename = "com.apple.eas.account")]
    Eas(EasPayload),
}

impl Payload {
    /// The payload's common keys.
    pub fn common(&self) -> &PayloadCommon {
        match self {
            Payload::Mdm(p) => &p.common,
            Payload::Scep(p) => &p.common,
            Payload::Root(p) | Payload::Pem(p) => &p.common,
            Payload::Eas(p) => &p.common,
        }
    }
}

/// Access rights of the MDM payload (bit mask; 8191 = all).
pub mod access {
    /// Inspect installed profiles.
    pub const PROFILE_INSPECTION: u32 = 1;
    /// Install and remove profiles (requires [`PROFILE_INSPECTION`]).
    pub const PROFILE_INSTALL: u32 = 2;
    pub const DEVICE_LOCK: u32 = 4;
    /// Erase (requires [`DEVICE_LOCK`]).
    pub const DEVICE_ERASE: u32 = 8;
    pub const DEVICE_INFORMATION: u32 = 16;
    pub const NETWORK_INFORMATION: u32 = 32;
    pub const PROVISIONING_PROFILES: u32 = 64;
    pub const PROVISIONING_PROFILE_INSTALL: u32 = 128;
    pub const APP_INSPECTION: u32 = 256;
    pub const RESTRICTIONS: u32 = 512;
    pub const SECURITY_QUERIES: u32 = 1024;
    pub const SETTINGS: u32 = 2048;
    pub const APP_MANAGEMENT: u32 = 4096;
    /// Every right.
    pub const ALL: u32 = 8191;
}

/// `com.apple.mdm`: the enrollment itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MdmPayload {
    #[serde(flatten)]
    pub common: PayloadCommon,
    /// `PayloadUUID` of the identity payload (SCEP or PKCS#12).
    #[serde(rename = "IdentityCertificateUUID")]
    pub identity_certificate_uuid: String,
    /// The push topic (UID of the APNs certificate); never changes.
    #[serde(rename = "Topic")]
    pub topic: String,
    /// Command/report URL.
    #[serde(rename = "ServerURL")]
    pub server_url: String,
    #[serde(
        rename = "CheckInURL",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub check_in_url: Option<String>,
    /// `true`: requests carry `Mdm-Signature` instead of a TLS client certificate.
    #[serde(
        rename = "SignMessage",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub sign_message: Option<bool>,
    #[serde(
        rename = "AccessRights",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub access_rights: Option<u32>,
    #[serde(
        rename = "CheckOutWhenRemoved",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub check_out_when_removed: Option<bool>,
    #[serde(
        rename = "UseDevelopmentAPNS",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub use_development_apns: Option<bool>,
    #[serde(
        rename = "ServerCapabilities",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub server_capabilities: Option<Vec<String>>,
}

/// `com.apple.security.scep`: the device makes its key and enrolls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScepPayload {
    #[serde(flatten)]
    pub common: PayloadCommon,
    #[serde(rename = "PayloadContent")]
    pub content: ScepContent,
}

/// The `PayloadContent` of a SCEP payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ScepContent {
    #[serde(rename = "URL")]
    pub url: String,
    /// CA name (SCEP `GetCACert` message).
    #[serde(
        rename = "Name",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub name: Option<String>,
    #[serde(
        rename = "Subject",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub subject: Option<Subject>,
    /// The challenge password (a one-time grant).
    #[serde(
        rename = "Challenge",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub challenge: Option<String>,
    /// 1024, 2048 or 4096.
    #[serde(
        rename = "Keysize",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub key_size: Option<u32>,
    /// `RSA` (the only type Apple documents).
    #[serde(
        rename = "Key Type",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub key_type: Option<String>,
    /// 1 signing, 4 encryption, 5 both.
    #[serde(
        rename = "Key Usage",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub key_usage: Option<u32>,
    #[serde(
        rename = "CAFingerprint",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub ca_fingerprint: Option<Data>,
    #[serde(
        rename = "Retries",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub retries: Option<u32>,
    #[serde(
        rename = "RetryDelay",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub retry_delay: Option<u32>,
    #[serde(
        rename = "SubjectAltName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub subject_alt_name: Option<SubjectAltName>,
    #[serde(
        rename = "KeyIsExtractable",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub key_is_extractable: Option<bool>,
    #[serde(
        rename = "AllowAllAppsAccess",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub allow_all_apps_access: Option<bool>,
}

/// An X.500 name as Apple writes it: `[[["CN", "x"]], [["O", "y"]]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Subject(pub Vec<Vec<[String; 2]>>);

impl Subject {
    /// One RDN per pair, in order (`("CN", "alice")`, or a dotted OID).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Subject(
            pairs
                .into_iter()
                .map(|(k, v)| vec![[k.to_owned(), v.to_owned()]])
                .collect(),
        )
    }
}

/// Subject alternative names the device puts in its SCEP request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubjectAltName {
    /// E-mail address (the certificate-based e-mail identity).
    #[serde(
        rename = "rfc822Name",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub rfc822_name: Option<String>,
    #[serde(
        rename = "dNSName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub dns_name: Option<String>,
    #[serde(
        rename = "uniformResourceIdentifier",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub uri: Option<String>,
    /// NT Principal Name (UPN), e.g. for Exchange / Active Directory.
    #[serde(
        rename = "ntPrincipalName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub nt_principal_name: Option<String>,
}

/// `com.apple.security.root` / `.pem`: a certificate (DER).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificatePayload {
    #[serde(flatten)]
    pub common: PayloadCommon,
    #[serde(
        rename = "PayloadCertificateFileName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub file_name: Option<String>,
    #[serde(rename = "PayloadContent")]
    pub content: Data,
}

/// `com.apple.eas.account`: an Exchange ActiveSync account.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EasPayload {
    #[serde(flatten)]
    pub common: PayloadCommon,
    #[serde(
        rename = "Host",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub host: Option<String>,
    #[serde(
        rename = "SSL",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub ssl: Option<bool>,
    #[serde(
        rename = "UserName",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub user_name: Option<String>,
    #[serde(
        rename = "EmailAddress",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub email_address: Option<String>,
    /// `PayloadUUID` of the identity (SCEP or PKCS#12 payload) to authenticate with.
    #[serde(
        rename = "PayloadCertificateUUID",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub payload_certificate_uuid: Option<String>,
    /// 0 (no limit), 1, 3, 7, 14 or 31.
    #[serde(
        rename = "MailNumberOfPastDaysToSync",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub mail_number_of_past_days_to_sync: Option<u32>,
    #[serde(
        rename = "PreventMove",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub prevent_move: Option<bool>,
    #[serde(
        rename = "PreventAppSheet",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub prevent_app_sheet: Option<bool>,
    #[serde(
        rename = "SMIMEEnabled",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub smime_enabled: Option<bool>,
    #[serde(
        rename = "SMIMESigningCertificateUUID",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub smime_signing_certificate_uuid: Option<String>,
    #[serde(
        rename = "SMIMEEncryptionCertificateUUID",
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::profile::some"
    )]
    pub smime_encryption_certificate_uuid: Option<String>,
}

impl Default for PayloadCommon {
    fn default() -> Self {
        PayloadCommon::new("")
    }
}

impl Profile {
    /// A `Configuration` profile with these payloads.
    pub fn new(common: PayloadCommon, content: Vec<Payload>) -> Self {
        Profile {
            common,
            scope: None,
            removal_disallowed: None,
            content,
        }
    }

    /// Checks what Apple's schemas and the device require of the structure
    /// (unique UUIDs and identifiers, identity references that resolve, value
    /// ranges), so a wrong profile is refused here rather than on a device.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let mut uuids = vec![self.common.uuid.as_str()];
        let mut ids = vec![self.common.identifier.as_str()];
        for p in &self.content {
            let c = p.common();
            if c.identifier.is_empty() {
                return Err(ProfileError::invalid("PayloadIdentifier", "empty"));
            }
            if uuids.contains(&c.uuid.as_str()) {
                return Err(ProfileError::invalid("PayloadUUID", "duplicate"));
            }
            if ids.contains(&c.identifier.as_str()) {
                return Err(ProfileError::invalid("PayloadIdentifier", "duplicate"));
            }
            uuids.push(&c.uuid);
            ids.push(&c.identifier);
        }
        if self.common.identifier.is_empty() {
            return Err(ProfileError::invalid("PayloadIdentifier", "empty"));
        }
        let identity = |uuid: &str| {
            self.content
                .iter()
                .any(|p| matches!(p, Payload::Scep(s) if s.common.uuid == uuid))
        };
        for p in &self.content {
            match p {
                Payload::Mdm(m) => {
                    if !identity(&m.identity_certificate_uuid) {
                        return Err(ProfileError::invalid(
                            "IdentityCertificateUUID",
                            "names no identity payload of this profile",
                        ));
                    }
                    if m.topic.is_empty() {
                        return Err(ProfileError::invalid("Topic", "empty"));
                    }
                    https("ServerURL", &m.server_url)?;
                    if let Some(u) = &m.check_in_url {
                        https("CheckInURL", u)?;
                    }
                    if let Some(r) = m.access_rights {
                        check_access_rights(r)?;
                    }
                }
                Payload::Scep(s) => {
                    if s.content.url.is_empty() {
                        return Err(ProfileError::invalid("URL", "empty"));
                    }
                    if let Some(k) = s.content.key_size
                        && ![1024, 2048, 4096].contains(&k)
                    {
                        return Err(ProfileError::invalid("Keysize", "1024, 2048 or 4096"));
                    }
                }
                Payload::Eas(e) => {
                    if let Some(u) = &e.payload_certificate_uuid
                        && !identity(u)
                    {
                        return Err(ProfileError::invalid(
                            "PayloadCertificateUUID",
                            "names no identity payload of this profile",
                        ));
                    }
                    if let Some(d) = e.mail_number_of_past_days_to_sync
                        && ![0, 1, 3, 7, 14, 31].contains(&d)
                    {
                        return Err(ProfileError::invalid(
                            "MailNumberOfPastDaysToSync",
                            "0, 1, 3, 7, 14 or 31",
                        ));
                    }
                }
                Payload::Root(_) | Payload::Pem(_) => {}
            }
        }
        Ok(())
    }

    /// Validates and writes the XML plist.
    pub fn to_xml(&self) -> Result<Vec<u8>, ProfileError> {
        self.validate()?;
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, self).map_err(|e| ProfileError::Encoding(e.to_string()))?;
        Ok(out)
    }
}

fn https(field: &'static str, url: &str) -> Result<(), ProfileError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ProfileError::invalid(field, "must be an https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ProfileError::invalid(field, "no host"));
    }
    Ok(())
}

/// The MDM payload's bit mask: 1..=8191, install-profiles needs inspect-profiles,
/// erase needs lock (Apple refuses the payload otherwise).
pub fn check_access_rights(r: u32) -> Result<(), ProfileError> {
    if r == 0 || r > access::ALL {
        return Err(ProfileError::invalid("AccessRights", "between 1 and 8191"));
    }
    if r & access::PROFILE_INSTALL != 0 && r & access::PROFILE_INSPECTION == 0 {
        return Err(ProfileError::invalid(
            "AccessRights",
            "profile installation (2) requires profile inspection (1)",
        ));
    }
    if r & access::DEVICE_ERASE != 0 && r & access::DEVICE_LOCK == 0 {
        return Err(ProfileError::invalid(
            "AccessRights",
            "device erase (8) requires device lock (4)",
        ));
    }
    Ok(())
}

/// What an enrollment profile is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrollmentSpec {
    /// Top-level `PayloadIdentifier`; keep it for renewals.
    pub identifier: String,
    pub display_name: String,
    pub organization: Option<String>,
    pub topic: String,
    pub server_url: String,
    pub check_in_url: Option<String>,
    pub sign_message: bool,
    pub access_rights: u32,
    pub check_out_when_removed: bool,
    pub scep: ScepContent,
    /// CA certificates (DER) to install as `com.apple.security.root` payloads.
    pub ca_certs_der: Vec<Vec<u8>>,
}

/// The enrollment profile: a SCEP identity payload, the MDM payload naming it,
/// and the CA certificates; returned as an XML plist.
pub fn enrollment_profile(spec: &EnrollmentSpec) -> Result<Vec<u8>, ProfileError> {
    enrollment_profile_struct(spec)?.to_xml()
}

/// [`enrollment_profile`] before serialisation.
pub fn enrollment_profile_struct(spec: &EnrollmentSpec) -> Result<Profile, ProfileError> {
    let id = &spec.identifier;
    let scep = ScepPayload {
        common: PayloadCommon::new(format!("{id}.scep")).named("Device identity"),
        content: spec.scep.clone(),
    };
    let mdm = MdmPayload {
        common: PayloadCommon::new(format!("{id}.mdm")).named("Device management"),
        identity_certificate_uuid: scep.common.uuid.clone(),
        topic: spec.topic.clone(),
        server_url: spec.server_url.clone(),
        check_in_url: spec.check_in_url.clone(),
        sign_message: Some(spec.sign_message),
        access_rights: Some(spec.access_rights),
        check_out_when_removed: Some(spec.check_out_when_removed),
        use_development_apns: None,
        server_capabilities: None,
    };
    let mut content = Vec::new();
    for (i, der) in spec.ca_certs_der.iter().enumerate() {
        content.push(Payload::Root(CertificatePayload {
            common: PayloadCommon::new(format!("{id}.ca.{i}")).named("Certificate authority"),
            file_name: Some(format!("ca-{i}.cer")),
            content: Data::new(der.clone()),
        }));
    }
    content.push(Payload::Scep(scep));
    content.push(Payload::Mdm(mdm));
    let mut common = PayloadCommon::new(id.clone()).named(spec.display_name.clone());
    common.organization = spec.organization.clone();
    Ok(Profile::new(common, content))
}

/// CMS SignedData (DER) with `profile` embedded (not detached), signed by
/// `signer_cert_der`'s key; `chain_der` (the intermediates) travels with it so
/// a device can build the chain.
pub fn sign_profile(
    profile: &[u8],
    signer_cert_der: &[u8],
    key: SignerKey<'_>,
    chain_der: &[Vec<u8>],
) -> Result<Vec<u8>, ProfileError> {
    let mut certs = vec![signer_cert_der.to_vec()];
    certs.extend(chain_der.iter().cloned());
    Ok(cms::sign_with(
        Some(profile),
        signer_cert_der,
        key,
        &[],
        &certs,
    )?)
}

/// Largest profile [`profile_identity`] reads.
pub const PROFILE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// What identifies an uploaded profile (for RemoveProfile and ProfileList).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileIdentity {
    /// Top-level `PayloadIdentifier` (RemoveProfile's `Identifier`).
    pub identifier: String,
    pub uuid: String,
    pub display_name: Option<String>,
    /// The signer certificate (DER) when the profile is CMS-signed (signature
    /// checked, chain not judged).
    pub signer_cert_der: Option<Vec<u8>>,
}

/// Reads an uploaded `.mobileconfig`, unsigned (XML plist) or CMS-signed (DER,
/// plist embedded; the signature must verify): its top-level identity. Payload
/// types this crate does not model are fine; only the top level is read.
pub fn profile_identity(bytes: &[u8]) -> Result<ProfileIdentity, crate::ParseError> {
    use crate::ParseError;
    use crate::plist_in::{opt_string, read_dict, string};
    let (xml, signer) = if bytes.first() == Some(&0x30) {
        if bytes.len() > PROFILE_MAX_BYTES {
            return Err(ParseError::TooLarge {
                size: bytes.len(),
                limit: PROFILE_MAX_BYTES,
            });
        }
        let v = cms::verify(bytes).map_err(|e| ParseError::Malformed(e.to_string()))?;
        if !v.has_content {
            return Err(ParseError::Malformed(
                "detached signature: the profile is not embedded".into(),
            ));
        }
        (v.content, Some(v.signer_cert_der))
    } else {
        (bytes.to_vec(), None)
    };
    let d = read_dict(&xml, PROFILE_MAX_BYTES)?;
    if string(&d, "PayloadType")? != "Configuration" {
        return Err(ParseError::WrongType {
            key: "PayloadType",
            expected: "Configuration",
        });
    }
    Ok(ProfileIdentity {
        identifier: string(&d, "PayloadIdentifier")?,
        uuid: string(&d, "PayloadUUID")?,
        display_name: opt_string(&d, "PayloadDisplayName")?,
        signer_cert_der: signer,
    })
}
