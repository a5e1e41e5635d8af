//! TLS 1.3 session tickets for every listener, so a device resumes its session instead of
//! paying a full handshake at each check-in, on this node or on any node holding the same
//! ticket secret (`DIR/tls/ticket.key`, 32 random bytes, 0600).
//!
//! Ticket keys rotate: time is cut into epochs of one ticket lifetime, and epoch `e`'s
//! AES-256-GCM key is HKDF-SHA256(secret, "ferrocore ticket key v1" || label || e), with one label for
//! listeners that ask for client certificates and one for the others. A ticket names
//! its epoch and is accepted during that epoch and the next, and only while its own age
//! (the issue time sealed inside it) is within the lifetime. Nodes derive the same keys from
//! the same secret without talking to each other. Resumption saves the handshake only:
//! the restored client certificate goes through `TrustStore::verify` and the store lookup
//! on every request like a new one.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use ferrocore_core::clock::Clock;
use std::sync::Arc;

/// Longest ticket lifetime TLS 1.3 allows (RFC 8446 4.6.1: seven days).
pub const MAX_LIFETIME_SECS: u32 = 7 * 24 * 3600;
/// Length of the ticket secret file.
pub const SECRET_LEN: usize = 32;

const VERSION: u8 = 1;
/// version (1) || epoch (8, big-endian) || nonce (12) || ciphertext || tag (16).
const HEADER_LEN: usize = 1 + 8 + NONCE_LEN;
const INFO: &[u8] = b"ferrocore ticket key v1";

/// The two ticket producers: one for configurations that ask for client certificates, one
/// for those that do not, so a ticket from one kind of listener never resumes on the other
/// (a device certificate never appears on a listener that did not ask for it).
#[derive(Debug, Clone)]
pub struct TicketKeys {
    pub client_auth: Arc<dyn rustls::server::ProducesTickets>,
    pub plain: Arc<dyn rustls::server::ProducesTickets>,
}

impl TicketKeys {
    pub fn new(secret: &[u8; SECRET_LEN], lifetime_secs: u32, clock: Arc<dyn Clock>) -> Self {
        TicketKeys {
            client_auth: Arc::new(Ticketer::new(
                secret,
                "client-auth",
                lifetime_secs,
                clock.clone(),
            )),
            plain: Arc::new(Ticketer::new(secret, "plain", lifetime_secs, clock)),
        }
    }
}

/// Session tickets sealed with keys derived from a secret shared by every node.
pub struct Ticketer {
    secret: Prk,
    label: &'static str,
    lifetime: u32,
    clock: Arc<dyn Clock>,
    rng: SystemRandom,
}

impl std::fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticketer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

struct KeyLen;
impl KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

impl Ticketer {
    /// `lifetime_secs` is clamped to 1 s ..= seven days.
    pub fn new(
        secret: &[u8; SECRET_LEN],
        label: &'static str,
        lifetime_secs: u32,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Ticketer {
            secret: Salt::new(HKDF_SHA256, b"").extract(secret),
            label,
            lifetime: lifetime_secs.clamp(1, MAX_LIFETIME_SECS),
            clock,
            rng: SystemRandom::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.now().unix_timestamp()).unwrap_or(0)
    }

    fn epoch_of(&self, t: u64) -> u64 {
        t / u64::from(self.lifetime)
    }

    fn key(&self, epoch: u64) -> Option<LessSafeKey> {
        let info = [INFO, self.label.as_bytes(), &epoch.to_be_bytes()];
        let okm = self.secret.expand(&info, KeyLen).ok()?;
        let mut key = [0u8; 32];
        okm.fill(&mut key).ok()?;
        Some(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).ok()?))
    }
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let now = self.now();
        let epoch = self.epoch_of(now);
        let key = self.key(epoch)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEADER_LEN + 8 + plain.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = Vec::with_capacity(8 + plain.len() + 16);
        body.extend_from_slice(&now.to_be_bytes());
        body.extend_from_slice(plain);
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..9]),
            &mut body,
        )
        .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < HEADER_LEN + 8 + 16 || cipher[0] != VERSION {
            return None;
        }
        let epoch = u64::from_be_bytes(cipher[1..9].try_into().ok()?);
        let now = self.now();
        let current = self.epoch_of(now);
        if epoch != current && epoch.checked_add(1) != Some(current) {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&cipher[9..HEADER_LEN]).ok()?;
        let mut body = cipher[HEADER_LEN..].to_vec();
        let plain = self
            .key(epoch)?
            .open_in_place(nonce, Aad::from(&cipher[..9]), &mut body)
            .ok()?;
        let issued = u64::from_be_bytes(plain.get(..8)?.try_into().ok()?);
        // Sealed in the future (a clock moved back) or older than the lifetime: refused.
        if issued > now.saturating_add(60) || now.saturating_sub(issued) > u64::from(self.lifetime)
        {
            return None;
        }
        Some(plain[8..].to_vec())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrocore_core::clock::ManualClock;
    use rustls::server::ProducesTickets;
    use time::macros::datetime;

    fn ticketer(secret: u8, lifetime: u32, clock: &Arc<ManualClock>) -> Ticketer {
        Ticketer::new(
            &[secret; SECRET_LEN],
            "client-auth",
            lifetime,
            clock.clone(),
        )
    }

    #[test]
    fn a_ticket_opens_on_every_node_with_the_same_secret_and_on_no_other() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-02 10:00 UTC)));
        let a = ticketer(7, 3600, &clock);
        let b = ticketer(7, 3600, &clock);
        let other = ticketer(8, 3600, &clock);
        let t = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&t).unwrap(), b"session state");
        assert_eq!(a.decrypt(&t).unwrap(), b"session state");
        assert!(other.decrypt(&t).is_none());
        let plain = Ticketer::new(&[7; SECRET_LEN], "plain", 3600, clock.clone());
        assert!(plain.decrypt(&t).is_none(), "another label, another key");
        // Two tickets of the same state differ (random nonce).
        assert_ne!(a.encrypt(b"session state").unwrap(), t);
    }

    #[test]
    fn a_ticket_is_refused_once_older_than_its_lifetime_or_tampered_with() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-02 10:59:59 UTC)));
        let a = ticketer(7, 3600, &clock);
        let t = a.encrypt(b"state").unwrap();
        // The next epoch still opens it while its age is within the lifetime.
        clock.advance(time::Duration::seconds(3600));
        assert_eq!(a.decrypt(&t).unwrap(), b"state");
        clock.advance(time::Duration::seconds(1));
        assert!(a.decrypt(&t).is_none(), "older than the lifetime");

        let clock = Arc::new(ManualClock::new(datetime!(2026-12-02 10:00 UTC)));
        let a = ticketer(7, 3600, &clock);
        let t = a.encrypt(b"state").unwrap();
        for i in 0..t.len() {
            let mut bad = t.clone();
            bad[i] ^= 1;
            assert!(a.decrypt(&bad).is_none(), "byte {i} flipped");
        }
        assert!(a.decrypt(&t[..t.len() - 1]).is_none());
        assert!(a.decrypt(&[]).is_none());
    }

    #[test]
    fn keys_rotate_each_lifetime() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-02 10:00 UTC)));
        let a = ticketer(7, 3600, &clock);
        let t1 = a.encrypt(b"x").unwrap();
        clock.advance(time::Duration::seconds(3600));
        let t2 = a.encrypt(b"x").unwrap();
        assert_ne!(t1[1..9], t2[1..9], "a new epoch names a new key");
        // A ticket two epochs old is refused even if its sealed time were fresh.
        clock.advance(time::Duration::seconds(3600));
        assert!(a.decrypt(&t1).is_none());
        assert_eq!(a.decrypt(&t2).unwrap(), b"x");
    }

    #[test]
    fn lifetime_is_at_most_seven_days() {
        let clock = Arc::new(ManualClock::new(datetime!(2026-12-02 10:00 UTC)));
        assert_eq!(ticketer(1, u32::MAX, &clock).lifetime(), MAX_LIFETIME_SECS);
        assert_eq!(ticketer(1, 0, &clock).lifetime(), 1);
    }
}
