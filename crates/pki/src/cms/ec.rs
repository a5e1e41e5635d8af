//! Elliptic-curve parts of CMS: ECDSA signers (P-256, P-384) and EnvelopedData
//! to an EC recipient by key agreement (RFC 5753).
//!
//! - [`EcKey`]: an ECDSA private key in aws-lc-rs (P-256 signs with SHA-256,
//!   P-384 with SHA-384); it also opens envelopes addressed to it.
//! - [`verify_ec`]: an ECDSA SignerInfo signature, named `ecdsa-with-SHA256/384/512`
//!   or `id-ecPublicKey` (digest from the SignerInfo's digestAlgorithm).
//! - [`envelope_kari`] / [`open_kari`]: one KeyAgreeRecipientInfo, ephemeral-static
//!   ECDH (`dhSinglePass-stdDH-sha256kdf-scheme`, X9.63 KDF with SHA-256) wrapping the
//!   content-encryption key with AES-256 key wrap (RFC 3394). This is how a SCEP CertRep
//!   reaches a requester whose signer certificate has an EC key (a RenewalReq signed
//!   with an ECDSA identity): RSA key transport cannot encrypt to it. OpenSSL's
//!   `cms -decrypt` opens it.

use aws_lc_rs::agreement;
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use cms::enveloped_data::{
    EnvelopedData, KeyAgreeRecipientIdentifier, OriginatorIdentifierOrKey, RecipientInfo,
};
use der::asn1::ObjectIdentifier as Oid;

use super::{
    ContentCipher, DigestAlg, OID_DATA, OID_ENVELOPED_DATA, cms_err, content_of, decrypt_content,
    enc, encrypt_content, issuer_and_serial_raw, octets, tlv,
};
use crate::PkiError;

pub(crate) const OID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const OID_P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const OID_ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 / SEC 1).
const OID_ECDH_SHA256_KDF: Oid = Oid::new_unwrap("1.3.132.1.11.1");
const OID_AES256_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.45");

/// A named curve Ferrocore signs and agrees keys on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    fn from_oid(oid: &Oid) -> Option<Self> {
        match *oid {
            o if o == OID_P256 => Some(Curve::P256),
            o if o == OID_P384 => Some(Curve::P384),
            _ => None,
        }
    }

    fn oid(self) -> Oid {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
        }
    }

    fn signing(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    fn ecdh(self) -> &'static agreement::Algorithm {
        match self {
            Curve::P256 => &agreement::ECDH_P256,
            Curve::P384 => &agreement::ECDH_P384,
        }
    }

    /// The digest an ECDSA signature on this curve uses when Ferrocore signs.
    pub fn digest(self) -> DigestAlg {
        match self {
            Curve::P256 => DigestAlg::Sha256,
            Curve::P384 => DigestAlg::Sha384,
        }
    }

    /// The signatureAlgorithm OID of a SignerInfo signed with this curve's digest.
    pub(crate) fn signature_oid(self) -> Oid {
        match self {
            Curve::P256 => OID_ECDSA_SHA256,
            Curve::P384 => OID_ECDSA_SHA384,
        }
    }
}

/// An ECDSA private key (P-256 or P-384) held by aws-lc-rs.
pub struct EcKey {
    curve: Curve,
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh key on `curve`.
    pub fn generate(curve: Curve) -> Result<Self, PkiError> {
        let doc = EcdsaKeyPair::generate_pkcs8(curve.signing(), &SystemRandom::new())
            .map_err(|e| PkiError::internal("EC key generation", e))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads a PKCS#8 (unencrypted) P-256 or P-384 private key.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, PkiError> {
        for curve in [Curve::P256, Curve::P384] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(curve.signing(), pkcs8) {
                return Ok(EcKey {
                    curve,
                    pair,
                    pkcs8: pkcs8.to_vec(),
                });
            }
        }
        Err(PkiError::InvalidKey {
            reason: "not a P-256 or P-384 PKCS#8 key".into(),
        })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The private key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The uncompressed public point.
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// ECDSA signature (DER) of `msg` with the curve's digest ([`Curve::digest`]).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.pair
            .sign(&SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| PkiError::internal("ECDSA signing", e))
    }
}

/// The curve and public point of a certificate with an EC key, `None` when it is not EC.
pub(crate) fn ec_public(cert_der: &[u8]) -> Result<Option<(Curve, Vec<u8>)>, PkiError> {
    let cert = crate::info::parse_cert(cert_der)?;
    let spki = &cert.tbs_certificate.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY.to_string() {
        return Ok(None);
    }
    let curve_oid = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string())
        .unwrap_or_default();
    let curve = Oid::new(&curve_oid)
        .ok()
        .and_then(|o| Curve::from_oid(&o))
        .ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: format!("EC curve {curve_oid}"),
        })?;
    Ok(Some((curve, spki.subject_public_key.data.to_vec())))
}

/// Verifies an ECDSA SignerInfo signature over `msg` with the certificate's key.
pub(crate) fn verify_ec(
    curve: Curve,
    point: &[u8],
    sig_oid: &Oid,
    digest: DigestAlg,
    msg: &[u8],
    sig: &[u8],
) -> Result<(), PkiError> {
    let digest = match *sig_oid {
        o if o == OID_EC_PUBLIC_KEY => digest,
        o if o == OID_ECDSA_SHA256 => DigestAlg::Sha256,
        o if o == OID_ECDSA_SHA384 => DigestAlg::Sha384,
        o if o == OID_ECDSA_SHA512 => DigestAlg::Sha512,
        o => {
            return Err(PkiError::UnsupportedAlgorithm {
                algorithm: format!("signature {o} with an EC key"),
            });
        }
    };
    let alg: &'static signature::EcdsaVerificationAlgorithm = match (curve, digest) {
        (Curve::P256, DigestAlg::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (Curve::P256, DigestAlg::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
        (Curve::P384, DigestAlg::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
        (Curve::P384, DigestAlg::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (c, d) => {
            return Err(PkiError::UnsupportedAlgorithm {
                algorithm: format!("ECDSA on {c:?} with {d:?}"),
            });
        }
    };
    signature::UnparsedPublicKey::new(alg, point)
        .verify(msg, sig)
        .map_err(|_| PkiError::CmsSignature {
            reason: "the signature does not verify with the signer's certificate".into(),
        })
}

/// ANSI X9.63 KDF with SHA-256 over ECC-CMS-SharedInfo (RFC 5753 section 7.2):
/// the 32-byte key-encryption key for AES-256 key wrap.
fn kek(z: &[u8], ukm: Option<&[u8]>) -> Result<Vec<u8>, PkiError> {
    // ECC-CMS-SharedInfo ::= SEQUENCE { keyInfo AlgorithmIdentifier,
    //   entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL, suppPubInfo [2] EXPLICIT OCTET STRING }
    let mut info = tlv(0x30, &enc("OID", &OID_AES256_WRAP)?);
    if let Some(u) = ukm {
        info.extend(tlv(0xa0, &tlv(0x04, u)));
    }
    info.extend(tlv(0xa2, &tlv(0x04, &256u32.to_be_bytes())));
    let shared_info = tlv(0x30, &info);
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(z);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(&shared_info);
    Ok(ctx.finish().as_ref().to_vec())
}

/// EnvelopedData (ContentInfo) of `content` for an EC recipient certificate:
/// content encrypted with a fresh key under `cipher`, that key wrapped (AES-256 KW)
/// under a key agreed by ephemeral-static ECDH with the recipient's public key.
pub(crate) fn envelope_kari(
    content: &[u8],
    recipient_cert_der: &[u8],
    curve: Curve,
    point: &[u8],
    cipher: ContentCipher,
) -> Result<Vec<u8>, PkiError> {
    use aws_lc_rs::rand::SecureRandom;
    let rng = SystemRandom::new();
    let mut cek = vec![0u8; cipher.key_len()];
    let mut iv = vec![0u8; cipher.iv_len()];
    rng.fill(&mut cek)
        .and_then(|_| rng.fill(&mut iv))
        .map_err(|e| PkiError::internal("random", e))?;
    if cipher == ContentCipher::DesEde3Cbc {
        super::set_des_parity(&mut cek);
    }
    let ciphertext = encrypt_content(cipher, &cek, &iv, content)?;

    let eph = agreement::EphemeralPrivateKey::generate(curve.ecdh(), &rng)
        .map_err(|e| PkiError::internal("ECDH key generation", e))?;
    let eph_pub = eph
        .compute_public_key()
        .map_err(|e| PkiError::internal("ECDH public key", e))?
        .as_ref()
        .to_vec();
    let peer = agreement::UnparsedPublicKey::new(curve.ecdh(), point);
    let kek = agreement::agree_ephemeral(
        eph,
        peer,
        PkiError::UnsupportedKey {
            reason: "the recipient's EC public key is not usable for ECDH".into(),
        },
        |z| kek(z, None),
    )?;
    let kw =
        KeyEncryptionKey::new(&AES_256, &kek).map_err(|e| PkiError::internal("key wrap", e))?;
    let mut wrapped = vec![0u8; cek.len() + 8];
    let wrapped = kw
        .wrap(&cek, &mut wrapped)
        .map_err(|e| PkiError::internal("key wrap", e))?
        .to_vec();

    // KeyAgreeRecipientInfo, written by hand like the key-transport recipient (serials
    // of any length). originator [0] { originatorKey [1] { id-ecPublicKey, BIT STRING } }.
    let mut orig_alg = enc("OID", &OID_EC_PUBLIC_KEY)?;
    orig_alg.extend(enc("OID", &curve.oid())?);
    let mut bits = vec![0u8];
    bits.extend(&eph_pub);
    let mut orig_key = tlv(0x30, &orig_alg);
    orig_key.extend(tlv(0x03, &bits));
    let originator = tlv(0xa0, &tlv(0xa1, &orig_key));
    let mut kea = enc("OID", &OID_ECDH_SHA256_KDF)?;
    kea.extend(tlv(0x30, &enc("OID", &OID_AES256_WRAP)?));
    let (issuer_der, serial_der) = issuer_and_serial_raw(recipient_cert_der)?;
    let mut ias = issuer_der;
    ias.extend(serial_der);
    let mut rek = tlv(0x30, &ias);
    rek.extend(tlv(0x04, &wrapped));
    let mut kari = tlv(0x02, &[3]);
    kari.extend(originator);
    kari.extend(tlv(0x30, &kea));
    kari.extend(tlv(0x30, &tlv(0x30, &rek)));

    let mut cipher_alg = enc("OID", &cipher.oid())?;
    cipher_alg.extend(tlv(0x04, &iv));
    let mut eci = enc("OID", &OID_DATA)?;
    eci.extend(tlv(0x30, &cipher_alg));
    eci.extend(tlv(0x80, &ciphertext));
    // Version 2: a KeyAgreeRecipientInfo is version 3 (RFC 5652 section 6.1).
    let mut ed = tlv(0x02, &[2]);
    ed.extend(tlv(0x31, &tlv(0xa1, &kari)));
    ed.extend(tlv(0x30, &eci));
    let mut ci = enc("OID", &OID_ENVELOPED_DATA)?;
    ci.extend(tlv(0xa0, &tlv(0x30, &ed)));
    Ok(tlv(0x30, &ci))
}

/// Opens an EnvelopedData with a KeyAgreeRecipientInfo for `key`
/// (`dhSinglePass-stdDH-sha256kdf-scheme`, AES-256 key wrap).
pub fn open_kari(der: &[u8], key: &EcKey) -> Result<(Vec<u8>, ContentCipher), PkiError> {
    let ed: EnvelopedData = content_of(der, OID_ENVELOPED_DATA, "EnvelopedData")?;
    let kari = ed
        .recip_infos
        .0
        .iter()
        .find_map(|ri| match ri {
            RecipientInfo::Kari(k) => Some(k),
            _ => None,
        })
        .ok_or_else(|| PkiError::UnsupportedAlgorithm {
            algorithm: "no key-agreement recipient".into(),
        })?;
    if kari.key_enc_alg.oid != OID_ECDH_SHA256_KDF {
        return Err(PkiError::UnsupportedAlgorithm {
            algorithm: format!("key agreement {}", kari.key_enc_alg.oid),
        });
    }
    let OriginatorIdentifierOrKey::OriginatorKey(orig) = &kari.originator else {
        return Err(cms_err("key agreement without an originator key"));
    };
    let rek = kari
        .recipient_enc_keys
        .iter()
        .find(|r| matches!(r.rid, KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(_)))
        .ok_or_else(|| cms_err("no recipient encrypted key"))?;
    let ukm = kari.ukm.as_ref().map(|u| u.as_bytes().to_vec());
    let priv_key = agreement::PrivateKey::from_private_key_der(key.curve.ecdh(), &key.pkcs8)
        .map_err(|e| PkiError::InvalidKey {
            reason: e.to_string(),
        })?;
    let peer =
        agreement::UnparsedPublicKey::new(key.curve.ecdh(), orig.public_key.raw_bytes().to_vec());
    let kek = agreement::agree(
        &priv_key,
        peer,
        cms_err("the originator key does not agree with ours"),
        |z| kek(z, ukm.as_deref()),
    )?;
    let kw =
        KeyEncryptionKey::new(&AES_256, &kek).map_err(|e| PkiError::internal("key wrap", e))?;
    let wrapped = rek.enc_key.as_bytes();
    let mut out = vec![0u8; wrapped.len()];
    let cek = kw
        .unwrap(wrapped, &mut out)
        .map_err(|_| cms_err("the content-encryption key does not unwrap"))?
        .to_vec();
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
    let ct = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| cms_err("EnvelopedData without encrypted content"))?;
    if cek.len() != cipher.key_len() || iv.len() != cipher.iv_len() {
        return Err(cms_err("key or IV of the wrong length"));
    }
    let content = decrypt_content(cipher, &cek, &iv, ct.as_bytes())?;
    Ok((content, cipher))
}
