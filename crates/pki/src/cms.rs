//! CMS (RFC 5652) for SCEP and EST: the one module that touches the `cms`
//! prerelease crate (`=0.3.0-rc.0`, see STACK.md). Everything public here takes
//! and returns DER bytes; no `cms`/`der`/`x509-cert` type crosses the crate
//! boundary.
//!
//! - [`certs_only`] / [`parse_certs_only`]: degenerate SignedData carrying
//!   certificates only (SCEP CertRep content, GetCACert RA chains, EST).
//! - [`envelope`] / [`open_envelope`]: EnvelopedData with one RSA key-transport
//!   recipient (PKCS#1 v1.5). Encrypts with AES-128/256-CBC or DES-EDE3-CBC;
//!   decrypts AES-128/192/256-CBC and DES-EDE3-CBC, BER (indefinite lengths,
//!   constructed OCTET STRINGs) as OpenSSL writes it.
//! - [`sign`] / [`verify`]: SignedData with signed attributes, one RSA PKCS#1
//!   v1.5 signer (SHA-1, SHA-256, SHA-512 accepted on verify; SHA-256 or
//!   SHA-512 used to sign). [`verify`] checks the signature and the
//!   messageDigest against the signer certificate carried in the message; it
//!   does not judge that certificate's chain (callers do).
//! - [`RsaKey`]: an RSA private key in aws-lc-rs (signing and PKCS#1 v1.5
//!   decryption), generated or loaded from PKCS#8.
//!
//! Signed attributes cross the boundary as [`SignedAttr`] (dotted OID, DER of
//! each value). Symmetric ciphers are RustCrypto (`aes`, `des`, `cbc`); every
//! RSA and digest operation is aws-lc-rs.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, Pkcs1PrivateDecryptingKey, Pkcs1PublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey,
};
use aws_lc_rs::{digest, rand::SecureRandom, rand::SystemRandom, signature};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, RecipientIdentifier, RecipientInfo,
    RecipientInfos,
};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier as Oid, OctetString, SetOfVec};
use der::{Any, Decode, Encode, EncodingRules};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::PkiError;

/// Largest CMS message this module accepts (SCEP bodies are a few KiB).
pub const CMS_MAX_BYTES: usize = 256 * 1024;

pub(crate) const OID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
const OID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
const OID_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
const OID_ATTR_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
const OID_ATTR_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
const OID_RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA1_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
const OID_SHA256_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const OID_SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
const OID_AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
const OID_AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
const OID_DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
const OID_DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");

/// Content-encryption algorithm of an EnvelopedData.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCipher {
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
    DesEde3Cbc,
    /// Single DES: never used to encrypt, and decrypted only by
    /// [`open_envelope_accepting_des`] (the CertRep of CAs that still send it, such as
    /// micromdm's scepserver 2.1; the certificate inside is public, the reply's integrity
    /// comes from the CA's signature).
    DesCbc,
}

impl ContentCipher {
    fn oid(self) -> Oid {
        match self {
            ContentCipher::Aes128Cbc => OID_AES128_CBC,
            ContentCipher::Aes192Cbc => OID_AES192_CBC,
            ContentCipher::Aes256Cbc => OID_AES256_CBC,
            ContentCipher::DesEde3Cbc => OID_DES_EDE3_CBC,
            ContentCipher::DesCbc => OID_DES_CBC,
        }
    }

    fn from_oid(oid: &Oid) -> Option<Self> {
        [
            ContentCipher::Aes128Cbc,
            ContentCipher::Aes192Cbc,
            ContentCipher::Aes256Cbc,
            ContentCipher::DesEde3Cbc,
        ]
        .into_iter()
        .find(|c| c.oid() == *oid)
    }

    fn key_len(self) -> usize {
        match self {
            ContentCipher::Aes128Cbc => 16,
            ContentCipher::Aes192Cbc | ContentCipher::DesEde3Cbc => 24,
            ContentCipher::Aes256Cbc => 32,
            ContentCipher::DesCbc => 8,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            ContentCipher::DesEde3Cbc | ContentCipher::DesCbc => 8,
            _ => 16,
        }
    }

    /// Short name for logs (`aes128-cbc`, ..., `des-ede3-cbc`).
    pub fn name(self) -> &'static str {
        match self {
            ContentCipher::Aes128Cbc => "aes128-cbc",
            ContentCipher::Aes192Cbc => "aes192-cbc",
            ContentCipher::Aes256Cbc => "aes256-cbc",
            ContentCipher::DesEde3Cbc => "des-ede3-cbc",
            ContentCipher::DesCbc => "des-cbc",
        }
    }
}

/// Digest algorithm of a SignedData signer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Sha1,
    Sha256,
    Sha512,
}

impl DigestAlg {
    fn oid(self) -> Oid {
        match self {
            DigestAlg::Sha1 => OID_SHA1,
            DigestAlg::Sha256 => OID_SHA256,
            DigestAlg::Sha512 => OID_SHA512,
        }
    }

    fn from_oid(oid: &Oid) -> Option<Self> {
        match *oid {
            o if o == OID_SHA1 => Some(DigestAlg::Sha1),
            o if o == OID_SHA256 => Some(DigestAlg::Sha256),
            o if o == OID_SHA512 => Some(DigestAlg::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            DigestAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &digest::SHA256,
            DigestAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// A signed attribute: dotted OID and the DER encoding of each value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAttr {
    pub oid: String,
    pub values: Vec<Vec<u8>>,
}

impl SignedAttr {
    /// The DER of the attribute's only value, if it has exactly one.
    pub fn single_value(&self) -> Option<&[u8]> {
        match self.values.as_slice() {
            [v] => Some(v),
            _ => None,
        }
    }
}

/// An RSA private key held by aws-lc-rs: signs (PKCS#1 v1.5) and decrypts
/// (PKCS#1 v1.5 key transport).
pub struct RsaKey {
    signer: signature::RsaKeyPair,
    decrypter: Pkcs1PrivateDecryptingKey,
    pkcs8: Vec<u8>,
    spki: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &(self.signer.public_modulus_len() * 8))
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// A fresh RSA-2048 key.
    pub fn generate_2048() -> Result<Self, PkiError> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048)
            .map_err(|e| PkiError::internal("RSA key generation", e))?;
        let pkcs8 = key
            .as_der()
            .map_err(|e| PkiError::internal("RSA key encoding", e))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    /// Loads a PKCS#8 (unencrypted) RSA private key.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, PkiError> {
        let invalid = |e: &dyn std::fmt::Display| PkiError::InvalidKey {
            reason: format!("not an RSA PKCS#8 key: {e}"),
        };
        let signer = signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| invalid(&e))?;
        let dec = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|e| invalid(&e))?;
        let spki = dec
            .public_key()
            .as_der()
            .map_err(|e| PkiError::internal("RSA public key encoding", e))?
            .as_ref()
            .to_vec();
        let decrypter =
            Pkcs1PrivateDecryptingKey::new(dec).map_err(|e| PkiError::internal("RSA key", e))?;
        Ok(RsaKey {
            signer,
            decrypter,
            pkcs8: pkcs8.to_vec(),
            spki,
        })
    }

    /// The private key as PKCS#8 DER (write it with `write_secret_file`).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// RSA PKCS#1 v1.5 signature of `msg` with `digest`.
    pub fn sign(&self, digest: DigestAlg, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        let alg: &'static dyn signature::RsaEncoding = match digest {
            DigestAlg::Sha1 => {
                return Err(PkiError::UnsupportedSignature {
                    algorithm: "sha1WithRSAEncryption (signing)".into(),
                });
            }
            DigestAlg::Sha256 => &signature::RSA_PKCS1_SHA256,
            DigestAlg::Sha512 => &signature::RSA_PKCS1_SHA512,
        };
        let mut sig = vec![0u8; self.signer.public_modulus_len()];
        self.signer
            .sign(alg, &SystemRandom::new(), msg, &mut sig)
            .map_err(|e| PkiError::internal("RSA signing", e))?;
        Ok(sig)
    }

    fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, PkiError> {
        let mut out = vec![0u8; self.decrypter.key_size_bytes()];
        let plain = self
            .decrypter
            .decrypt(ciphertext, &mut out)
            .map_err(|_| cms_err("the content-encryption key does not decrypt with our key"))?;
        Ok(plain.to_vec())
    }
}

fn cms_err(reason: impl Into<String>) -> PkiError {
    PkiError::InvalidCms {
        reason: reason.into(),
    }
}

fn der_err(what: &str) -> impl Fn(der::Error) -> PkiError + '_ {
    move |e| cms_err(format!("{what}: {e}"))
}

fn enc<T: Encode>(what: &'static str, v: &T) -> Result<Vec<u8>, PkiError> {
    v.to_der().map_err(|e| PkiError::internal(what, e))
}

fn check_size(der: &[u8]) -> Result<(), PkiError> {
    if der.is_empty() {
        return Err(cms_err("empty message"));
    }
    if der.len() > CMS_MAX_BYTES {
        return Err(cms_err(format!(
            "message of {} bytes exceeds {CMS_MAX_BYTES}",
            der.len()
        )));
    }
    Ok(())
}

/// Parses a ContentInfo (DER or BER) and returns its inner content of `expected` type.
fn content_of<T>(der: &[u8], expected: Oid, what: &str) -> Result<T, PkiError>
where
    T: for<'a> der::DecodeValue<'a, Error = der::Error> + der::FixedTag,
{
    check_size(der)?;
    let ci = ContentInfo::from_ber(der).map_err(der_err("not a CMS ContentInfo"))?;
    if ci.content_type != expected {
        return Err(cms_err(format!(
            "content type {} is not {what}",
            ci.content_type
        )));
    }
    ci.content
        .decode_as_encoding::<T>(EncodingRules::Ber)
        .map_err(der_err(what))
}

fn content_info(
    oid: Oid,
    inner: &(impl der::EncodeValue + der::Tagged),
) -> Result<Vec<u8>, PkiError> {
    let ci = ContentInfo {
        content_type: oid,
        content: Any::encode_from(inner).map_err(|e| PkiError::internal("CMS encoding", e))?,
    };
    enc("CMS encoding", &ci)
}

fn parse_cert(der: &[u8]) -> Result<Certificate, PkiError> {
    Certificate::from_der(der).map_err(|e| PkiError::InvalidCertificate {
        reason: e.to_string(),
    })
}

/// The DER value of an OCTET STRING that may be BER-constructed (chunks).
fn octets(any: &Any) -> Result<Vec<u8>, PkiError> {
    let os = any
        .decode_as_encoding::<OctetString>(EncodingRules::Ber)
        .map_err(der_err("not an OCTET STRING"))?;
    Ok(os.as_bytes().to_vec())
}

// ---------------------------------------------------------------- certs-only

/// A degenerate SignedData ("certs-only", RFC 8894 section 3.4 / RFC 5652)
/// carrying `certs_der` in order.
pub fn certs_only(certs_der: &[Vec<u8>]) -> Result<Vec<u8>, PkiError> {
    let mut set = Vec::with_capacity(certs_der.len());
    for c in certs_der {
        set.push(CertificateChoices::Certificate(parse_cert(c)?));
    }
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(
            SetOfVec::try_from(set).map_err(|e| PkiError::internal("certificate set", e))?,
        )),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    content_info(OID_SIGNED_DATA, &sd)
}

/// The certificates (DER) of a SignedData, in their order in the message.
/// Accepts DER and BER; signatures, if any, are not checked.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let sd: SignedData = content_of(der, OID_SIGNED_DATA, "SignedData")?;
    certs_of(&sd)
}

fn certs_of(sd: &SignedData) -> Result<Vec<Vec<u8>>, PkiError> {
    let mut out = Vec::new();
    if let Some(set) = &sd.certificates {
        for choice in set.0.iter() {
            if let CertificateChoices::Certificate(c) = choice {
                out.push(enc("certificate encoding", c)?);
            }
        }
    }
    Ok(out)
}

// ----------------------------------------------------------------- enveloped

/// EnvelopedData (ContentInfo) of `content`, encrypted with a fresh key under
/// `cipher`, the key transported to `recipient_cert_der`'s RSA key (PKCS#1 v1.5).
pub fn envelope(
    content: &[u8],
    recipient_cert_der: &[u8],
    cipher: ContentCipher,
) -> Result<Vec<u8>, PkiError> {
    let cert = parse_cert(recipient_cert_der)?;
    let spki = enc(
        "SPKI encoding",
        cert.tbs_certificate().subject_public_key_info(),
    )?;
    if cert
        .tbs_certificate()
        .subject_public_key_info()
        .algorithm
        .oid
        != OID_RSA_ENCRYPTION
    {
        return Err(PkiError::UnsupportedKey {
            reason: "the recipient certificate's key is not RSA".into(),
        });
    }
    let rng = SystemRandom::new();
    let mut key = vec![0u8; cipher.key_len()];
    let mut iv = vec![0u8; cipher.iv_len()];
    rng.fill(&mut key)
        .and_then(|_| rng.fill(&mut iv))
        .map_err(|e| PkiError::internal("random", e))?;
    if cipher == ContentCipher::DesEde3Cbc {
        set_des_parity(&mut key);
    }
    let ciphertext = encrypt_content(cipher, &key, &iv, content)?;

    let public = PublicEncryptingKey::from_der(&spki).map_err(|e| PkiError::UnsupportedKey {
        reason: format!("recipient RSA key: {e}"),
    })?;
    let public =
        Pkcs1PublicEncryptingKey::new(public).map_err(|e| PkiError::internal("RSA key", e))?;
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let wrapped = public
        .encrypt(&key, &mut wrapped)
        .map_err(|e| PkiError::internal("RSA key transport", e))?
        .to_vec();

    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: OID_RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        enc_key: OctetString::new(wrapped).map_err(|e| PkiError::internal("CMS", e))?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos(
            SetOfVec::try_from(vec![RecipientInfo::Ktri(ktri)])
                .map_err(|e| PkiError::internal("CMS", e))?,
        ),
        encrypted_content: EncryptedContentInfo {
            content_type: OID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(
                    Any::encode_from(
                        &OctetString::new(iv).map_err(|e| PkiError::internal("CMS", e))?,
                    )
                    .map_err(|e| PkiError::internal("CMS", e))?,
                ),
            },
            encrypted_content: Some(
                OctetString::new(ciphertext).map_err(|e| PkiError::internal("CMS", e))?,
            ),
        },
        unprotected_attrs: None,
    };
    content_info(OID_ENVELOPED_DATA, &ed)
}

/// Decrypts an EnvelopedData (ContentInfo, DER or BER) addressed to
/// `recipient_cert_der` with `key`; returns the content and the cipher used.
pub fn open_envelope(
    der: &[u8],
    recipient_cert_der: &[u8],
    key: &RsaKey,
) -> Result<(Vec<u8>, ContentCipher), PkiError> {
    open_envelope_with(der, recipient_cert_der, key, false)
}

/// [`open_envelope`] that also decrypts single DES-CBC: for a client reading a CertRep
/// (public certificates, signed by the CA) from CAs that still encrypt with it.
pub fn open_envelope_accepting_des(
    der: &[u8],
    recipient_cert_der: &[u8],
    key: &RsaKey,
) -> Result<(Vec<u8>, ContentCipher), PkiError> {
    open_envelope_with(der, recipient_cert_der, key, true)
}

fn open_envelope_with(
    der: &[u8],
    recipient_cert_der: &[u8],
    key: &RsaKey,
    allow_des: bool,
) -> Result<(Vec<u8>, ContentCipher), PkiError> {
    let ed: EnvelopedData = match content_of(der, OID_ENVELOPED_DATA, "EnvelopedData") {
        Ok(ed) => ed,
        // Go's pkcs7 (micromdm's scepserver) writes encryptedContent as a definite-length
        // constructed [0] holding one OCTET STRING, which `der`'s BER mode refuses: retry
        // with those made primitive.
        Err(first) => match primitive_implicit_octets(der) {
            Some(fixed) => {
                content_of(&fixed, OID_ENVELOPED_DATA, "EnvelopedData").map_err(|_| first)?
            }
            None => return Err(first),
        },
    };
    let cert = parse_cert(recipient_cert_der)?;
    let ours = IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    };
    let mut ktris = ed.recip_infos.0.iter().filter_map(|ri| match ri {
        RecipientInfo::Ktri(k) => Some(k),
        _ => None,
    });
    let ktri = ktris
        .clone()
        .find(|k| matches!(&k.rid, RecipientIdentifier::IssuerAndSerialNumber(ias) if *ias == ours))
        .or_else(|| ktris.next())
        .ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: "no key-transport recipient".into(),
        })?;
    if ktri.key_enc_alg.oid != OID_RSA_ENCRYPTION {
        return Err(PkiError::UnsupportedAlgorithm {
            algorithm: format!("key transport {}", ktri.key_enc_alg.oid),
        });
    }
    let eci = &ed.encrypted_content;
    let oid = &eci.content_enc_alg.oid;
    let cipher = ContentCipher::from_oid(oid)
        .or_else(|| (allow_des && *oid == OID_DES_CBC).then_some(ContentCipher::DesCbc))
        .ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: format!("content encryption {}", eci.content_enc_alg.oid),
        })?;
    let iv = match &eci.content_enc_alg.parameters {
        Some(p) => octets(p)?,
        None => return Err(cms_err("content-encryption algorithm without an IV")),
    };
    if iv.len() != cipher.iv_len() {
        return Err(cms_err("IV of the wrong length"));
    }
    let ciphertext = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| cms_err("EnvelopedData without encrypted content"))?;
    let cek = key.decrypt(ktri.enc_key.as_bytes())?;
    if cek.len() != cipher.key_len() {
        return Err(cms_err("content-encryption key of the wrong length"));
    }
    let content = decrypt_content(cipher, &cek, &iv, ciphertext.as_bytes())?;
    Ok((content, cipher))
}

/// Re-encodes a definite-length BER tree with every constructed context-specific `[0]`
/// whose children are all primitive OCTET STRINGs turned into a primitive `[0]` holding their
/// concatenation (the BER form of an IMPLICIT `[0] OCTET STRING` in chunks). Only applied to
/// EnvelopedData, where no EXPLICIT `[0]` wraps an OCTET STRING. `None` when the input is not
/// such a tree (indefinite lengths, truncation) or nothing changed.
fn primitive_implicit_octets(ber: &[u8]) -> Option<Vec<u8>> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers do not occur here
        }
        let (&l0, rest) = rest.split_first()?;
        let (len, rest) = if l0 < 0x80 {
            (usize::from(l0), rest)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None; // indefinite or absurd length
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |a, &x| (a << 8) | usize::from(x));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }
    fn children(mut b: &[u8]) -> Option<Vec<(u8, &[u8])>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (t, v, rest) = tlv(b)?;
            out.push((t, v));
            b = rest;
        }
        Some(out)
    }
    fn encode(tag: u8, value: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(value);
    }
    fn walk(tag: u8, value: &[u8], changed: &mut bool, out: &mut Vec<u8>) -> Option<()> {
        if tag & 0x20 == 0 {
            encode(tag, value, out);
            return Some(());
        }
        let kids = children(value)?;
        if tag == 0xa0 && !kids.is_empty() && kids.iter().all(|(t, _)| *t == 0x04) {
            let joined: Vec<u8> = kids.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            encode(0x80, &joined, out);
            *changed = true;
            return Some(());
        }
        let mut inner = Vec::with_capacity(value.len());
        for (t, v) in kids {
            walk(t, v, changed, &mut inner)?;
        }
        encode(tag, &inner, out);
        Some(())
    }
    let (tag, value, rest) = tlv(ber)?;
    if !rest.is_empty() {
        return None;
    }
    let mut changed = false;
    let mut out = Vec::with_capacity(ber.len());
    walk(tag, value, &mut changed, &mut out)?;
    changed.then_some(out)
}

fn set_des_parity(key: &mut [u8]) {
    for b in key.iter_mut() {
        let v = *b & 0xfe;
        *b = if v.count_ones() % 2 == 0 { v | 1 } else { v };
    }
}

fn encrypt_content(
    cipher: ContentCipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let bad = |e: &dyn std::fmt::Display| PkiError::internal("cipher setup", e);
    Ok(match cipher {
        ContentCipher::Aes128Cbc => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        ContentCipher::Aes192Cbc => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        ContentCipher::Aes256Cbc => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        ContentCipher::DesEde3Cbc => cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .encrypt_padded_vec_mut::<Pkcs7>(data),
        ContentCipher::DesCbc => {
            return Err(PkiError::UnsupportedAlgorithm {
                algorithm: "DES-CBC is never used to encrypt".into(),
            });
        }
    })
}

fn decrypt_content(
    cipher: ContentCipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, PkiError> {
    let bad = |e: &dyn std::fmt::Display| cms_err(format!("cipher setup: {e}"));
    let unpad = |_| cms_err("encrypted content does not decrypt (padding)");
    match cipher {
        ContentCipher::Aes128Cbc => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(unpad),
        ContentCipher::Aes192Cbc => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(unpad),
        ContentCipher::Aes256Cbc => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(unpad),
        ContentCipher::DesEde3Cbc => cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(unpad),
        ContentCipher::DesCbc => cbc::Decryptor::<des::Des>::new_from_slices(key, iv)
            .map_err(|e| bad(&e))?
            .decrypt_padded_vec_mut::<Pkcs7>(data)
            .map_err(unpad),
    }
}

// -------------------------------------------------------------------- signed

/// A verified SignedData.
#[derive(Clone, Debug)]
pub struct Verified {
    /// eContentType, dotted.
    pub content_type: String,
    /// eContent (empty when absent).
    pub content: Vec<u8>,
    /// Whether eContent was present.
    pub has_content: bool,
    /// The signer's certificate (DER), found in the message's certificates.
    pub signer_cert_der: Vec<u8>,
    /// The signer's digest algorithm.
    pub digest: DigestAlg,
    /// The signed attributes (contentType and messageDigest included).
    pub signed_attrs: Vec<SignedAttr>,
    /// All certificates the message carries (DER).
    pub certs: Vec<Vec<u8>>,
}

impl Verified {
    /// The signed attribute with this dotted OID.
    pub fn attr(&self, oid: &str) -> Option<&SignedAttr> {
        self.signed_attrs.iter().find(|a| a.oid == oid)
    }
}

/// Builds a SignedData (ContentInfo) of id-data `content` (`None`: no
/// eContent) signed by `signer_cert_der`/`key` with signed attributes
/// contentType, messageDigest and `attrs`; `certs` are carried (put the
/// signer's certificate among them).
pub fn sign(
    content: Option<&[u8]>,
    signer_cert_der: &[u8],
    key: &RsaKey,
    digest: DigestAlg,
    attrs: &[SignedAttr],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, PkiError> {
    let cert = parse_cert(signer_cert_der)?;
    let ie = |e: der::Error| PkiError::internal("CMS encoding", e);
    let content_digest = digest.digest(content.unwrap_or(&[]));
    let mut signed = SetOfVec::<Attribute>::new();
    let mut push = |oid: Oid, value: Any| -> Result<(), PkiError> {
        let values = SetOfVec::try_from(vec![value]).map_err(ie)?;
        signed.insert(Attribute { oid, values }).map_err(ie)
    };
    push(
        OID_ATTR_CONTENT_TYPE,
        Any::encode_from(&OID_DATA).map_err(ie)?,
    )?;
    push(
        OID_ATTR_MESSAGE_DIGEST,
        Any::encode_from(&OctetString::new(content_digest).map_err(ie)?).map_err(ie)?,
    )?;
    for a in attrs {
        let oid = Oid::new(&a.oid).map_err(|e| PkiError::input("attribute OID", e.to_string()))?;
        let mut values = SetOfVec::new();
        for v in &a.values {
            values
                .insert(
                    Any::from_der(v)
                        .map_err(|e| PkiError::input("attribute value", e.to_string()))?,
                )
                .map_err(ie)?;
        }
        signed.insert(Attribute { oid, values }).map_err(ie)?;
    }
    let to_sign = signed.to_der().map_err(ie)?;
    let signature = key.sign(digest, &to_sign)?;
    let sig_oid = match digest {
        DigestAlg::Sha1 => OID_SHA1_RSA,
        DigestAlg::Sha256 => OID_SHA256_RSA,
        DigestAlg::Sha512 => OID_SHA512_RSA,
    };
    let si = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate().issuer().clone(),
            serial_number: cert.tbs_certificate().serial_number().clone(),
        }),
        digest_alg: AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: Some(Any::null()),
        },
        signed_attrs: Some(signed),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: sig_oid,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature).map_err(ie)?,
        unsigned_attrs: None,
    };
    let mut cert_set = Vec::new();
    for c in certs {
        cert_set.push(CertificateChoices::Certificate(parse_cert(c)?));
    }
    let econtent = match content {
        Some(c) => Some(Any::encode_from(&OctetString::new(c.to_vec()).map_err(ie)?).map_err(ie)?),
        None => None,
    };
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![AlgorithmIdentifierOwned {
            oid: digest.oid(),
            parameters: Some(Any::null()),
        }])
        .map_err(ie)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_DATA,
            econtent,
        },
        certificates: if cert_set.is_empty() {
            None
        } else {
            Some(CertificateSet(SetOfVec::try_from(cert_set).map_err(ie)?))
        },
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![si]).map_err(ie)?),
    };
    content_info(OID_SIGNED_DATA, &sd)
}

/// Verifies a SignedData (ContentInfo, DER or BER) with exactly one signer
/// whose certificate the message carries: RSA PKCS#1 v1.5 signature over the
/// signed attributes, messageDigest equal to the content's digest, contentType
/// equal to eContentType. Errors: [`PkiError::InvalidCms`] (malformed),
/// [`PkiError::UnsupportedAlgorithm`] (digest/signature/key not supported),
/// [`PkiError::CmsSignature`] (does not verify).
pub fn verify(der: &[u8]) -> Result<Verified, PkiError> {
    decode_signed(der, true)
}

/// Decodes a SignedData like [`verify`] but does not check the signature or
/// the messageDigest: for reading the attributes of a message that may be
/// refused (a SCEP FAILURE reply needs its transactionID and senderNonce).
pub fn inspect_signed(der: &[u8]) -> Result<Verified, PkiError> {
    decode_signed(der, false)
}

fn decode_signed(der: &[u8], check: bool) -> Result<Verified, PkiError> {
    let sd: SignedData = content_of(der, OID_SIGNED_DATA, "SignedData")?;
    let certs = certs_of(&sd)?;
    let si = match sd.signer_infos.0.as_slice() {
        [si] => si,
        [] => return Err(cms_err("SignedData has no signer")),
        _ => return Err(cms_err("SignedData has more than one signer")),
    };
    let signer_cert_der = find_signer(&sd, si)?
        .ok_or_else(|| cms_err("the signer's certificate is not in the message"))?;
    let digest =
        DigestAlg::from_oid(&si.digest_alg.oid).ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: format!("digest {}", si.digest_alg.oid),
        })?;
    let (content, has_content) = match &sd.encap_content_info.econtent {
        Some(any) => (octets(any)?, true),
        None => (Vec::new(), false),
    };
    let signed = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| cms_err("SignedData without signed attributes"))?;
    let mut signed_attrs = Vec::new();
    for a in signed.iter() {
        let mut values = Vec::new();
        for v in a.values.iter() {
            values.push(enc("attribute", v)?);
        }
        signed_attrs.push(SignedAttr {
            oid: a.oid.to_string(),
            values,
        });
    }
    let get = |oid: Oid| {
        signed
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.get(0))
    };
    let md = get(OID_ATTR_MESSAGE_DIGEST)
        .ok_or_else(|| cms_err("no messageDigest attribute"))?
        .decode_as::<OctetString>()
        .map_err(der_err("messageDigest"))?;
    let ct = get(OID_ATTR_CONTENT_TYPE)
        .ok_or_else(|| cms_err("no contentType attribute"))?
        .decode_as::<Oid>()
        .map_err(der_err("contentType"))?;
    if check && ct != sd.encap_content_info.econtent_type {
        return Err(PkiError::CmsSignature {
            reason: "contentType attribute differs from eContentType".into(),
        });
    }
    if check && md.as_bytes() != digest.digest(&content).as_slice() {
        return Err(PkiError::CmsSignature {
            reason: "messageDigest does not match the content".into(),
        });
    }
    let to_verify = signed.to_der().map_err(|e| PkiError::internal("CMS", e))?;
    if check {
        verify_rsa(
            &signer_cert_der,
            &si.signature_algorithm.oid,
            digest,
            &to_verify,
            si.signature.as_bytes(),
        )?;
    }
    Ok(Verified {
        content_type: sd.encap_content_info.econtent_type.to_string(),
        content,
        has_content,
        signer_cert_der,
        digest,
        signed_attrs,
        certs,
    })
}

fn find_signer(sd: &SignedData, si: &SignerInfo) -> Result<Option<Vec<u8>>, PkiError> {
    let Some(set) = &sd.certificates else {
        return Ok(None);
    };
    for choice in set.0.iter() {
        let CertificateChoices::Certificate(c) = choice else {
            continue;
        };
        let hit = match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer == *c.tbs_certificate().issuer()
                    && ias.serial_number == *c.tbs_certificate().serial_number()
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                let der = enc("certificate", c)?;
                crate::info::subject_key_id(&der).as_deref() == Some(ski.0.as_bytes())
            }
        };
        if hit {
            return Ok(Some(enc("certificate", c)?));
        }
    }
    Ok(None)
}

fn verify_rsa(
    cert_der: &[u8],
    sig_oid: &Oid,
    digest: DigestAlg,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let cert = parse_cert(cert_der)?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    if spki.algorithm.oid != OID_RSA_ENCRYPTION {
        return Err(PkiError::UnsupportedAlgorithm {
            algorithm: format!("signer key {}", spki.algorithm.oid),
        });
    }
    // rsaEncryption (digest named by digestAlgorithm) or the combined OID.
    let digest = match *sig_oid {
        o if o == OID_RSA_ENCRYPTION => digest,
        o if o == OID_SHA1_RSA => DigestAlg::Sha1,
        o if o == OID_SHA256_RSA => DigestAlg::Sha256,
        o if o == OID_SHA512_RSA => DigestAlg::Sha512,
        o => {
            return Err(PkiError::UnsupportedAlgorithm {
                algorithm: format!("signature {o}"),
            });
        }
    };
    let alg: &'static signature::RsaParameters = match digest {
        DigestAlg::Sha1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlg::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        DigestAlg::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
    };
    let pk = spki.subject_public_key.raw_bytes();
    signature::UnparsedPublicKey::new(alg, pk)
        .verify(msg, sig)
        .map_err(|_| PkiError::CmsSignature {
            reason: "the signature does not verify with the signer's certificate".into(),
        })
}
