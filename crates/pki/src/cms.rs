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
//! - [`sign`] / [`sign_with`] / [`verify`], detached: [`sign_detached`] /
//!   [`verify_detached`]: SignedData with signed attributes and
//!   one signer: RSA PKCS#1 v1.5 (SHA-1, SHA-256, SHA-384, SHA-512 accepted on
//!   verify; SHA-256 or SHA-512 used to sign) or ECDSA on P-256/P-384
//!   (`ecdsa-with-SHA256/384/512` or `id-ecPublicKey` plus the digestAlgorithm on
//!   verify; [`EcKey`] signs with its curve's digest). [`verify`] checks the
//!   signature and the messageDigest against the signer certificate carried in
//!   the message; it does not judge that certificate's chain (callers do).
//! - [`envelope`] to an EC certificate uses key agreement instead of key transport
//!   (module `ec`: ephemeral-static ECDH, X9.63 SHA-256 KDF, AES-256 key wrap;
//!   [`open_kari`] opens it).
//! - [`EcKey`]: an ECDSA private key (P-256, P-384).
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
use cms::enveloped_data::{EnvelopedData, RecipientIdentifier, RecipientInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{ObjectIdentifier as Oid, OctetString, SetOfVec};
use der::{Any, Decode, Encode, EncodingRules};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::PkiError;

mod ec;
pub use ec::{Curve, EcKey, open_kari};

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
const OID_SHA384_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const OID_SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
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
    /// Single DES: only ever decrypted (micromdm's `scepclient` sends nothing else); never
    /// used for anything Ferrocore encrypts.
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
            ContentCipher::DesCbc,
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
    Sha384,
    Sha512,
}

impl DigestAlg {
    fn oid(self) -> Oid {
        match self {
            DigestAlg::Sha1 => OID_SHA1,
            DigestAlg::Sha256 => OID_SHA256,
            DigestAlg::Sha384 => OID_SHA384,
            DigestAlg::Sha512 => OID_SHA512,
        }
    }

    fn from_oid(oid: &Oid) -> Option<Self> {
        match *oid {
            o if o == OID_SHA1 => Some(DigestAlg::Sha1),
            o if o == OID_SHA256 => Some(DigestAlg::Sha256),
            o if o == OID_SHA384 => Some(DigestAlg::Sha384),
            o if o == OID_SHA512 => Some(DigestAlg::Sha512),
            _ => None,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            DigestAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &digest::SHA256,
            DigestAlg::Sha384 => &digest::SHA384,
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
            DigestAlg::Sha384 => &signature::RSA_PKCS1_SHA384,
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
    let normalised = ber_to_der(der)?;
    let ci = ContentInfo::from_ber(&normalised).map_err(der_err("not a CMS ContentInfo"))?;
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

/// Re-encodes BER as DER the way CMS needs it: definite lengths, constructed OCTET
/// STRINGs joined, and the constructed `[0] IMPLICIT OCTET STRING` of an
/// EncryptedContentInfo (`SEQUENCE { OID, AlgorithmIdentifier, [0] }`, as OpenSSL's
/// streaming and Go's pkcs7 write it) made primitive. Content octets are unchanged,
/// so signatures and digests over them still verify.
fn ber_to_der(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (tlv, rest) = ber_tlv(input, 0)?;
    if !rest.is_empty() {
        return Err(cms_err("trailing bytes after the message"));
    }
    Ok(tlv.encode())
}

struct BerTlv {
    tag: u8,
    /// Primitive content, or the children of a constructed value.
    value: BerValue,
}

enum BerValue {
    Primitive(Vec<u8>),
    Constructed(Vec<BerTlv>),
}

impl BerTlv {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    fn content_len(&self) -> usize {
        match &self.value {
            BerValue::Primitive(v) => v.len(),
            BerValue::Constructed(children) => children.iter().map(BerTlv::encoded_len).sum(),
        }
    }

    fn encoded_len(&self) -> usize {
        let n = self.content_len();
        let len_octets = if n < 0x80 {
            1
        } else {
            1 + n.to_be_bytes().iter().skip_while(|b| **b == 0).count()
        };
        1 + len_octets + n
    }

    /// Tag, definite length, content: written once into `out` (no copy per nesting level).
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        let n = self.content_len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes = n.to_be_bytes();
            let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(&significant);
        }
        match &self.value {
            BerValue::Primitive(v) => out.extend_from_slice(v),
            BerValue::Constructed(children) => {
                for c in children {
                    c.encode_into(out);
                }
            }
        }
    }

    /// The octets of a (possibly constructed) OCTET STRING-like value.
    fn octets(&self) -> Option<Vec<u8>> {
        match &self.value {
            BerValue::Primitive(v) => Some(v.clone()),
            BerValue::Constructed(children) => {
                let mut out = Vec::new();
                for c in children {
                    if c.tag & 0xdf != 0x04 {
                        return None;
                    }
                    out.extend(c.octets()?);
                }
                Some(out)
            }
        }
    }
}

const BER_MAX_DEPTH: usize = 32;

fn ber_tlv(input: &[u8], depth: usize) -> Result<(BerTlv, &[u8]), PkiError> {
    if depth > BER_MAX_DEPTH {
        return Err(cms_err("nested too deeply"));
    }
    let short = || cms_err("truncated");
    let (&tag, rest) = input.split_first().ok_or_else(short)?;
    if tag & 0x1f == 0x1f {
        return Err(cms_err("multi-byte tags are not used in CMS"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(short)?;
    let constructed = tag & 0x20 != 0;
    let len = if first == 0x80 {
        None
    } else if first < 0x80 {
        Some(usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n > 4 || rest.len() < n {
            return Err(cms_err("bad length"));
        }
        let mut l = 0usize;
        for b in &rest[..n] {
            l = (l << 8) | usize::from(*b);
        }
        rest = &rest[n..];
        Some(l)
    };
    if !constructed {
        let l = len.ok_or_else(|| cms_err("indefinite length on a primitive value"))?;
        if rest.len() < l {
            return Err(short());
        }
        let tlv = BerTlv {
            tag,
            value: BerValue::Primitive(rest[..l].to_vec()),
        };
        return Ok((tlv, &rest[l..]));
    }
    let mut children = Vec::new();
    let after = match len {
        Some(l) => {
            if rest.len() < l {
                return Err(short());
            }
            let (mut inner, after) = rest.split_at(l);
            while !inner.is_empty() {
                let (c, r) = ber_tlv(inner, depth + 1)?;
                children.push(c);
                inner = r;
            }
            after
        }
        None => loop {
            if rest.starts_with(&[0, 0]) {
                break &rest[2..];
            }
            if rest.is_empty() {
                return Err(short());
            }
            let (c, r) = ber_tlv(rest, depth + 1)?;
            children.push(c);
            rest = r;
        },
    };
    let mut tlv = BerTlv {
        tag,
        value: BerValue::Constructed(children),
    };
    if tag == 0x24 {
        // Constructed OCTET STRING: join the chunks.
        let joined = tlv
            .octets()
            .ok_or_else(|| cms_err("bad constructed OCTET STRING"))?;
        tlv = BerTlv {
            tag: 0x04,
            value: BerValue::Primitive(joined),
        };
    } else if tag == 0x30
        && let BerValue::Constructed(children) = &mut tlv.value
        && children.len() == 3
        && children[0].tag == 0x06
        && children[1].tag == 0x30
        && children[2].tag == 0xa0
        && let Some(joined) = children[2].octets()
    {
        // EncryptedContentInfo with a constructed [0] IMPLICIT OCTET STRING.
        children[2] = BerTlv {
            tag: 0x80,
            value: BerValue::Primitive(joined),
        };
    }
    Ok((tlv, after))
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
    // Written by hand: a DER SET OF would be sorted, and SCEP clients take the first
    // certificate as the issued one, so the caller's order (leaf first) is kept, as
    // OpenSSL does.
    let mut certs = Vec::new();
    for c in certs_der {
        parse_cert(c)?;
        certs.extend_from_slice(c);
    }
    let data_oid = enc("OID", &OID_DATA)?;
    let signed_data_oid = enc("OID", &OID_SIGNED_DATA)?;
    let mut sd = tlv(0x02, &[1]); // version 1
    sd.extend(tlv(0x31, &[])); // digestAlgorithms
    sd.extend(tlv(0x30, &data_oid)); // encapContentInfo without eContent
    sd.extend(tlv(0xa0, &certs)); // [0] IMPLICIT certificates
    sd.extend(tlv(0x31, &[])); // signerInfos
    let mut ci = signed_data_oid;
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    Ok(tlv(0x30, &ci))
}

/// A degenerate SignedData carrying one CRL (`crls` [1]), the SCEP GetCRL answer
/// (RFC 8894 3.3.4).
pub fn crls_only(crl_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use x509_parser::prelude::FromDer;
    let (rest, _) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der)
        .map_err(|e| cms_err(format!("not a CRL: {e}")))?;
    if !rest.is_empty() {
        return Err(cms_err("trailing bytes after the CRL"));
    }
    let data_oid = enc("OID", &OID_DATA)?;
    let signed_data_oid = enc("OID", &OID_SIGNED_DATA)?;
    let mut sd = tlv(0x02, &[1]); // version 1
    sd.extend(tlv(0x31, &[])); // digestAlgorithms
    sd.extend(tlv(0x30, &data_oid)); // encapContentInfo without eContent
    sd.extend(tlv(0xa1, crl_der)); // [1] IMPLICIT crls
    sd.extend(tlv(0x31, &[])); // signerInfos
    let mut ci = signed_data_oid;
    ci.extend(tlv(0xa0, &tlv(0x30, &sd)));
    Ok(tlv(0x30, &ci))
}

/// One DER TLV with a single-byte tag.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    BerTlv {
        tag,
        value: BerValue::Primitive(content.to_vec()),
    }
    .encode()
}

/// The certificates (DER) of a SignedData, in their order in the message.
/// Accepts DER and BER; signatures, if any, are not checked.
pub fn parse_certs_only(der: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let sd = signed_data_tlv(der)?;
    Ok(signed_parts(&sd)?.certs)
}

// ----------------------------------------------------------------- enveloped

/// EnvelopedData (ContentInfo) of `content`, encrypted with a fresh key under
/// `cipher`, the key transported to `recipient_cert_der`'s RSA key (PKCS#1 v1.5),
/// or, for an EC (P-256/P-384) certificate, agreed with it (see [`open_kari`]).
pub fn envelope(
    content: &[u8],
    recipient_cert_der: &[u8],
    cipher: ContentCipher,
) -> Result<Vec<u8>, PkiError> {
    if let Some((curve, point)) = ec::ec_public(recipient_cert_der)? {
        return ec::envelope_kari(content, recipient_cert_der, curve, &point, cipher);
    }
    let (spki, _) = rsa_spki(recipient_cert_der).map_err(|_| PkiError::UnsupportedKey {
        reason: "the recipient certificate's key is not RSA".into(),
    })?;
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

    // Written by hand (not with the `cms` types) so recipients whose certificates carry
    // serials longer than 20 octets (certmonger's) can be addressed.
    let (issuer_der, serial_der) = issuer_and_serial_raw(recipient_cert_der)?;
    let mut ias = issuer_der;
    ias.extend(serial_der);
    let mut rsa_alg = enc("OID", &OID_RSA_ENCRYPTION)?;
    rsa_alg.extend([0x05, 0x00]);
    let mut ktri = tlv(0x02, &[0]);
    ktri.extend(tlv(0x30, &ias));
    ktri.extend(tlv(0x30, &rsa_alg));
    ktri.extend(tlv(0x04, &wrapped));
    let mut cipher_alg = enc("OID", &cipher.oid())?;
    cipher_alg.extend(tlv(0x04, &iv));
    let mut eci = enc("OID", &OID_DATA)?;
    eci.extend(tlv(0x30, &cipher_alg));
    eci.extend(tlv(0x80, &ciphertext));
    let mut ed = tlv(0x02, &[0]);
    ed.extend(tlv(0x31, &tlv(0x30, &ktri)));
    ed.extend(tlv(0x30, &eci));
    let mut ci = enc("OID", &OID_ENVELOPED_DATA)?;
    ci.extend(tlv(0xa0, &tlv(0x30, &ed)));
    Ok(tlv(0x30, &ci))
}

/// The issuer Name DER and the serial INTEGER DER of a certificate, as encoded.
fn issuer_and_serial_raw(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let cert = crate::info::parse_cert(cert_der)?;
    let issuer = cert.tbs_certificate.issuer.as_raw().to_vec();
    Ok((issuer, tlv(0x02, cert.tbs_certificate.raw_serial())))
}

/// Decrypts an EnvelopedData (ContentInfo, DER or BER) addressed to
/// `recipient_cert_der` with `key`; returns the content and the cipher used.
pub fn open_envelope(
    der: &[u8],
    recipient_cert_der: &[u8],
    key: &RsaKey,
) -> Result<(Vec<u8>, ContentCipher), PkiError> {
    let ed: EnvelopedData = content_of(der, OID_ENVELOPED_DATA, "EnvelopedData")?;
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
    let cipher = ContentCipher::from_oid(&eci.content_enc_alg.oid).ok_or_else(|| {
        PkiError::UnsupportedAlgorithm {
            algorithm: format!("content encryption {}", eci.content_enc_alg.oid),
        }
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
                algorithm: "des-cbc".into(),
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
    sign_with(
        content,
        signer_cert_der,
        SignerKey::Rsa(key, digest),
        attrs,
        certs,
    )
}

/// The private key of a SignedData signer.
#[derive(Clone, Copy, Debug)]
pub enum SignerKey<'a> {
    /// RSA PKCS#1 v1.5 with this digest.
    Rsa(&'a RsaKey, DigestAlg),
    /// ECDSA with the curve's digest (P-256: SHA-256, P-384: SHA-384).
    Ec(&'a EcKey),
}

impl SignerKey<'_> {
    /// The digest this signer uses.
    pub fn digest(&self) -> DigestAlg {
        match self {
            SignerKey::Rsa(_, d) => *d,
            SignerKey::Ec(k) => k.curve().digest(),
        }
    }
}

/// [`sign`] with an RSA or an EC key.
pub fn sign_with(
    content: Option<&[u8]>,
    signer_cert_der: &[u8],
    key: SignerKey<'_>,
    attrs: &[SignedAttr],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, PkiError> {
    sign_inner(
        content.unwrap_or(&[]),
        content.is_some(),
        signer_cert_der,
        key,
        attrs,
        certs,
    )
}

/// A detached SignedData over `content` (eContent absent, messageDigest of
/// `content`), as [`verify_detached`] reads it: an `Mdm-Signature`.
pub fn sign_detached(
    content: &[u8],
    signer_cert_der: &[u8],
    key: SignerKey<'_>,
    attrs: &[SignedAttr],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, PkiError> {
    sign_inner(content, false, signer_cert_der, key, attrs, certs)
}

fn sign_inner(
    content: &[u8],
    embed: bool,
    signer_cert_der: &[u8],
    key: SignerKey<'_>,
    attrs: &[SignedAttr],
    certs: &[Vec<u8>],
) -> Result<Vec<u8>, PkiError> {
    let digest = key.digest();
    let cert = parse_cert(signer_cert_der)?;
    let ie = |e: der::Error| PkiError::internal("CMS encoding", e);
    let content_digest = digest.digest(content);
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
    let (signature, sig_oid, sig_params) = match key {
        SignerKey::Rsa(k, _) => {
            let oid = match digest {
                DigestAlg::Sha1 => OID_SHA1_RSA,
                DigestAlg::Sha256 => OID_SHA256_RSA,
                DigestAlg::Sha384 => OID_SHA384_RSA,
                DigestAlg::Sha512 => OID_SHA512_RSA,
            };
            (k.sign(digest, &to_sign)?, oid, Some(Any::null()))
        }
        // ECDSA signature algorithms carry no parameters (RFC 5758).
        SignerKey::Ec(k) => (k.sign(&to_sign)?, k.curve().signature_oid(), None),
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
            parameters: sig_params,
        },
        signature: OctetString::new(signature).map_err(ie)?,
        unsigned_attrs: None,
    };
    let mut cert_set = Vec::new();
    for c in certs {
        cert_set.push(CertificateChoices::Certificate(parse_cert(c)?));
    }
    let econtent = if embed {
        Some(Any::encode_from(&OctetString::new(content.to_vec()).map_err(ie)?).map_err(ie)?)
    } else {
        None
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
/// whose certificate the message carries: RSA PKCS#1 v1.5 or ECDSA (P-256,
/// P-384) signature over the signed attributes, messageDigest equal to the content's digest, contentType
/// equal to eContentType. Errors: [`PkiError::InvalidCms`] (malformed),
/// [`PkiError::UnsupportedAlgorithm`] (digest/signature/key not supported),
/// [`PkiError::CmsSignature`] (does not verify).
pub fn verify(der: &[u8]) -> Result<Verified, PkiError> {
    decode_signed(der, true, None)
}

/// Verifies a detached SignedData (eContent absent) over `content`, the bytes
/// signed, with the checks of [`verify`]; the returned [`Verified::content`] is
/// `content`. A message that embeds its content is refused
/// ([`PkiError::InvalidCms`]): the caller expects a detached signature.
pub fn verify_detached(der: &[u8], content: &[u8]) -> Result<Verified, PkiError> {
    decode_signed(der, true, Some(content))
}

/// Decodes a SignedData like [`verify`] but does not check the signature or
/// the messageDigest: for reading the attributes of a message that may be
/// refused (a SCEP FAILURE reply needs its transactionID and senderNonce).
pub fn inspect_signed(der: &[u8]) -> Result<Verified, PkiError> {
    decode_signed(der, false, None)
}

// SignedData is read at the TLV level, not with the `cms` types: those refuse
// certificate serial numbers longer than 20 octets (x509-cert's RFC 5280 profile),
// and certmonger's self-signed request certificates carry 32-octet serials.

fn children(t: &BerTlv) -> &[BerTlv] {
    match &t.value {
        BerValue::Constructed(c) => c,
        BerValue::Primitive(_) => &[],
    }
}

fn primitive(t: &BerTlv) -> &[u8] {
    match &t.value {
        BerValue::Primitive(v) => v,
        BerValue::Constructed(_) => &[],
    }
}

fn oid_of(t: &BerTlv) -> Result<Oid, PkiError> {
    if t.tag != 0x06 {
        return Err(cms_err("expected an OBJECT IDENTIFIER"));
    }
    Oid::from_der(&t.encode()).map_err(der_err("OBJECT IDENTIFIER"))
}

/// The SignedData inside a ContentInfo, as a TLV tree.
fn signed_data_tlv(der: &[u8]) -> Result<BerTlv, PkiError> {
    check_size(der)?;
    let (ci, rest) = ber_tlv(der, 0)?;
    if !rest.is_empty() {
        return Err(cms_err("trailing bytes after the message"));
    }
    let parts = children(&ci);
    if ci.tag != 0x30 || parts.len() != 2 || parts[1].tag != 0xa0 {
        return Err(cms_err("not a CMS ContentInfo"));
    }
    let ct = oid_of(&parts[0])?;
    if ct != OID_SIGNED_DATA {
        return Err(cms_err(format!("content type {ct} is not SignedData")));
    }
    let mut inner = match &parts[1].value {
        BerValue::Constructed(c) if c.len() == 1 && c[0].tag == 0x30 => c.iter(),
        _ => return Err(cms_err("SignedData: bad content")),
    };
    inner
        .next()
        .map(|t| BerTlv {
            tag: t.tag,
            value: match &t.value {
                BerValue::Constructed(c) => {
                    BerValue::Constructed(c.iter().map(clone_tlv).collect())
                }
                BerValue::Primitive(v) => BerValue::Primitive(v.clone()),
            },
        })
        .ok_or_else(|| cms_err("SignedData: bad content"))
}

fn clone_tlv(t: &BerTlv) -> BerTlv {
    BerTlv {
        tag: t.tag,
        value: match &t.value {
            BerValue::Constructed(c) => BerValue::Constructed(c.iter().map(clone_tlv).collect()),
            BerValue::Primitive(v) => BerValue::Primitive(v.clone()),
        },
    }
}

struct SignedParts<'a> {
    econtent_type: Oid,
    econtent: Option<Vec<u8>>,
    certs: Vec<Vec<u8>>,
    signer_infos: &'a [BerTlv],
}

fn signed_parts(sd: &BerTlv) -> Result<SignedParts<'_>, PkiError> {
    let f = children(sd);
    let bad = |what: &str| cms_err(format!("SignedData: {what}"));
    if sd.tag != 0x30 || f.len() < 4 || f[0].tag != 0x02 || f[1].tag != 0x31 || f[2].tag != 0x30 {
        return Err(bad("unexpected structure"));
    }
    let eci = children(&f[2]);
    let econtent_type = oid_of(eci.first().ok_or_else(|| bad("empty encapContentInfo"))?)?;
    let econtent = match eci.get(1) {
        None => None,
        Some(t) if t.tag == 0xa0 => {
            let os = children(t).first().ok_or_else(|| bad("empty eContent"))?;
            Some(
                os.octets()
                    .ok_or_else(|| bad("eContent is not an OCTET STRING"))?,
            )
        }
        Some(_) => return Err(bad("bad eContent")),
    };
    let mut certs = Vec::new();
    let mut idx = 3;
    while idx < f.len() - 1 {
        match f[idx].tag {
            0xa0 => {
                for c in children(&f[idx]) {
                    if c.tag == 0x30 {
                        certs.push(c.encode());
                    }
                }
            }
            0xa1 => {}
            _ => return Err(bad("unexpected field")),
        }
        idx += 1;
    }
    let last = &f[f.len() - 1];
    if last.tag != 0x31 {
        return Err(bad("no signerInfos"));
    }
    Ok(SignedParts {
        econtent_type,
        econtent,
        certs,
        signer_infos: children(last),
    })
}

fn decode_signed(der: &[u8], check: bool, detached: Option<&[u8]>) -> Result<Verified, PkiError> {
    let sd = signed_data_tlv(der)?;
    let mut parts = signed_parts(&sd)?;
    let has_content = parts.econtent.is_some();
    if let Some(external) = detached {
        if parts.econtent.is_some() {
            return Err(cms_err(
                "SignedData embeds its content; a detached signature was expected",
            ));
        }
        parts.econtent = Some(external.to_vec());
    }
    let si = match parts.signer_infos {
        [si] => si,
        [] => return Err(cms_err("SignedData has no signer")),
        _ => return Err(cms_err("SignedData has more than one signer")),
    };
    let bad = |what: &str| cms_err(format!("SignerInfo: {what}"));
    let sf = children(si);
    if si.tag != 0x30 || sf.len() < 5 || sf[0].tag != 0x02 {
        return Err(bad("unexpected structure"));
    }
    let sid = &sf[1];
    let digest_oid = oid_of(
        children(&sf[2])
            .first()
            .ok_or_else(|| bad("digestAlgorithm"))?,
    )?;
    let digest =
        DigestAlg::from_oid(&digest_oid).ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: format!("digest {digest_oid}"),
        })?;
    let signed = sf
        .get(3)
        .filter(|t| t.tag == 0xa0)
        .ok_or_else(|| cms_err("SignedData without signed attributes"))?;
    let sig_alg = oid_of(
        children(&sf[4])
            .first()
            .ok_or_else(|| bad("signatureAlgorithm"))?,
    )?;
    let signature = sf
        .get(5)
        .filter(|t| t.tag == 0x04)
        .ok_or_else(|| bad("signature"))?;
    let signer_cert_der = find_signer(&parts.certs, sid)?
        .ok_or_else(|| cms_err("the signer's certificate is not in the message"))?;

    let mut signed_attrs = Vec::new();
    for a in children(signed) {
        let af = children(a);
        if a.tag != 0x30 || af.len() != 2 || af[1].tag != 0x31 {
            return Err(bad("malformed attribute"));
        }
        signed_attrs.push(SignedAttr {
            oid: oid_of(&af[0])?.to_string(),
            values: children(&af[1]).iter().map(BerTlv::encode).collect(),
        });
    }
    let single = |oid: Oid| -> Option<&BerTlv> {
        children(signed).iter().find_map(|a| {
            let af = children(a);
            (af.len() == 2 && oid_of(&af[0]).ok() == Some(oid))
                .then(|| children(&af[1]).first())
                .flatten()
        })
    };
    let md = single(OID_ATTR_MESSAGE_DIGEST)
        .filter(|t| t.tag == 0x04)
        .ok_or_else(|| cms_err("no messageDigest attribute"))?;
    let ct =
        oid_of(single(OID_ATTR_CONTENT_TYPE).ok_or_else(|| cms_err("no contentType attribute"))?)?;
    let content = parts.econtent.unwrap_or_default();
    if check {
        if ct != parts.econtent_type {
            return Err(PkiError::CmsSignature {
                reason: "contentType attribute differs from eContentType".into(),
            });
        }
        if primitive(md) != digest.digest(&content).as_slice() {
            return Err(PkiError::CmsSignature {
                reason: "messageDigest does not match the content".into(),
            });
        }
        // The signature covers the DER of the attributes as a SET.
        let mut to_verify = signed.encode();
        to_verify[0] = 0x31;
        match ec::ec_public(&signer_cert_der)? {
            Some((curve, point)) => ec::verify_ec(
                curve,
                &point,
                &sig_alg,
                digest,
                &to_verify,
                primitive(signature),
            )?,
            None => verify_rsa(
                &signer_cert_der,
                &sig_alg,
                digest,
                &to_verify,
                primitive(signature),
            )?,
        }
    }
    Ok(Verified {
        content_type: parts.econtent_type.to_string(),
        content,
        has_content,
        signer_cert_der,
        digest,
        signed_attrs,
        certs: parts.certs,
    })
}

/// The certificate `sid` names: IssuerAndSerialNumber (issuer DER and serial INTEGER
/// compared as encoded) or `[0]` subjectKeyIdentifier.
fn find_signer(certs: &[Vec<u8>], sid: &BerTlv) -> Result<Option<Vec<u8>>, PkiError> {
    for c in certs {
        let Ok(cert) = crate::info::parse_cert(c) else {
            continue;
        };
        let hit = match sid.tag {
            0x30 => {
                let f = children(sid);
                f.len() == 2
                    && f[0].encode() == cert.tbs_certificate.issuer.as_raw()
                    && strip_sign(primitive(&f[1])) == strip_sign(cert.tbs_certificate.raw_serial())
            }
            0x80 => crate::info::subject_key_id(c).as_deref() == Some(primitive(sid)),
            _ => false,
        };
        if hit {
            return Ok(Some(c.clone()));
        }
    }
    Ok(None)
}

fn strip_sign(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|x| **x == 0).count();
    &b[skip..]
}

/// (SubjectPublicKeyInfo DER, RSAPublicKey DER) of a certificate with an RSA key
/// (x509-parser: no limit on serial lengths).
fn rsa_spki(cert_der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), PkiError> {
    let cert = crate::info::parse_cert(cert_der)?;
    let spki = &cert.tbs_certificate.subject_pki;
    let alg = spki.algorithm.algorithm.to_id_string();
    if alg != OID_RSA_ENCRYPTION.to_string() {
        return Err(PkiError::UnsupportedAlgorithm {
            algorithm: format!("signer key {alg}"),
        });
    }
    Ok((spki.raw.to_vec(), spki.subject_public_key.data.to_vec()))
}

fn verify_rsa(
    cert_der: &[u8],
    sig_oid: &Oid,
    digest: DigestAlg,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let (_, pk) = rsa_spki(cert_der)?;
    // rsaEncryption (digest named by digestAlgorithm) or the combined OID.
    let digest = match *sig_oid {
        o if o == OID_RSA_ENCRYPTION => digest,
        o if o == OID_SHA1_RSA => DigestAlg::Sha1,
        o if o == OID_SHA256_RSA => DigestAlg::Sha256,
        o if o == OID_SHA384_RSA => DigestAlg::Sha384,
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
        DigestAlg::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        DigestAlg::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
    };
    signature::UnparsedPublicKey::new(alg, pk)
        .verify(msg, sig)
        .map_err(|_| PkiError::CmsSignature {
            reason: "the signature does not verify with the signer's certificate".into(),
        })
}
