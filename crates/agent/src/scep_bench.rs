//! `ferrocore-agent scep-bench`: SCEP enrollments per second against any SCEP server
//! (Ferrocore, micromdm's `scepserver`), built on Ferrocore's SCEP client codec.
//!
//! Before the clock starts it fetches GetCACaps and GetCACert, then builds every PKCSReq
//! up front (RSA-2048 key, CSR with the challenge, self-signed signer, envelope to the RA
//! or CA): the timed part is only the server's work. `concurrency` workers each keep one
//! HTTP/1.1 connection (plain `http://` or `https://` with `--ca`) and POST the prepared
//! messages; an enrollment counts when the answer is a CertRep with pkiStatus SUCCESS, and
//! every HTTP answer (a FAILURE CertRep or an error status too) counts as answered, so CPU
//! per request can be taken over all the work a server did. Challenges are one static
//! password or one per request (one-time challenges, `--challenges-file`).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use ferrocore_client::{ClientOptions, Connection, Method, Scheme, TlsClient, Url};
use ferrocore_pki::RsaKey;
use ferrocore_pki::cms::{self, ContentCipher};
use ferrocore_pki::scep::{self, CaCaps};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// `http(s)://HOST:PORT/path` of the SCEP endpoint.
    pub url: String,
    /// CA (PEM) of an `https://` server.
    pub ca_pem: Option<String>,
    pub challenges: Challenges,
    pub concurrency: usize,
    pub requests: usize,
    /// RSA keys to prepare; requests use them in turn (each request still has its own CSR,
    /// signer certificate and transaction ID). 0: a key per request.
    pub keys: usize,
}

/// The challenge passwords the CSRs carry.
#[derive(Debug, Clone)]
pub enum Challenges {
    /// The same (static) challenge in every CSR.
    Static(String),
    /// Challenge i in CSR i (one-time challenges).
    PerRequest(Vec<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub url: String,
    /// `static` or `one-time`.
    pub challenges: &'static str,
    pub requests: usize,
    pub succeeded: usize,
    /// Requests that got no SUCCESS CertRep (failed answers and transport errors).
    pub failed: usize,
    /// Requests the server answered at all (any HTTP answer: SUCCESS, a FAILURE CertRep, an
    /// error status): the work the server did.
    pub answered: usize,
    pub concurrency: usize,
    pub cipher: &'static str,
    pub elapsed_secs: f64,
    pub enrollments_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub prepare_secs: f64,
    /// The client's own CPU time (all threads) during the timed part, per answered request;
    /// `None` where `/proc/self/stat` cannot be read.
    pub client_cpu_ms_per_request: Option<f64>,
}

/// CPU time (user + system, all threads) of this process so far, in clock ticks (Linux).
fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// `f(0..n)` on every CPU, results in order.
fn parallel<T, F>(n: usize, f: F) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Result<T> + Send + Sync + 'static,
{
    let threads = std::thread::available_parallelism().map_or(2, |t| t.get());
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (next, f) = (next.clone(), f.clone());
            std::thread::spawn(move || -> Result<Vec<(usize, T)>> {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok(out);
                    }
                    out.push((i, f(i)?));
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for h in handles {
        let part = h
            .join()
            .map_err(|_| anyhow::anyhow!("a preparation thread panicked"))??;
        all.extend(part);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Clock ticks per second for `/proc` CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// The SCEP service under load: its URL and the project's HTTP client.
struct Target {
    client: TlsClient,
    url: Url,
}

impl Target {
    fn parse(url: &str, ca_pem: Option<&str>) -> Result<Target> {
        let url = Url::parse(url).context("--url")?;
        let client = match url.scheme {
            Scheme::Https => TlsClient::new(
                ca_pem.context("an https:// URL needs --ca")?,
                None,
                ClientOptions::default(),
            )?,
            Scheme::Http => TlsClient::plain(ClientOptions::default())?,
        };
        Ok(Target { client, url })
    }

    /// A keep-alive connection to the service.
    async fn connect(&self) -> Result<Connection> {
        Ok(self.client.connect(&self.url.origin()).await?)
    }

    async fn call(
        &self,
        conn: &mut Connection,
        method: Method,
        query: &str,
        body: Bytes,
    ) -> Result<(u16, String, Bytes)> {
        let resp = conn
            .send(
                method,
                &format!("{}?{query}", self.url.path),
                &[("content-type", "application/x-pki-message")],
                body.to_vec(),
            )
            .await?;
        let ct = resp
            .headers
            .get(ferrocore_client::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok((resp.status, ct, Bytes::from(resp.body)))
    }
}

/// Picks the certificate requests are encrypted to: an RSA RA (not a CA) when offered,
/// else the first RSA certificate (an RSA CA acting as its own RA).
fn recipient(certs: &[Vec<u8>]) -> Result<Vec<u8>> {
    let rsa = |c: &Vec<u8>| cms::envelope(b"x", c, ContentCipher::Aes128Cbc).is_ok();
    let ca = |c: &Vec<u8>| ferrocore_pki::cert_info(c).map(|i| i.is_ca).unwrap_or(true);
    certs
        .iter()
        .find(|c| rsa(c) && !ca(c))
        .or_else(|| certs.iter().find(|c| rsa(c)))
        .cloned()
        .context("GetCACert offered no RSA certificate to encrypt to")
}

fn succeeded(body: &[u8]) -> bool {
    cms::inspect_signed(body)
        .ok()
        .and_then(|v| {
            v.attr("2.16.840.1.113733.1.9.3")
                .and_then(|a| a.single_value().map(<[u8]>::to_vec))
        })
        .is_some_and(|v| v.ends_with(b"0") && v.len() == 3)
}

pub async fn run(opts: BenchOptions) -> Result<BenchReport> {
    let target = Arc::new(Target::parse(&opts.url, opts.ca_pem.as_deref())?);
    let mut conn = target.connect().await?;
    let (_, _, caps) = target
        .call(&mut conn, Method::GET, "operation=GetCACaps", Bytes::new())
        .await?;
    let caps = CaCaps::parse(&String::from_utf8_lossy(&caps));
    let (status, ct, body) = target
        .call(&mut conn, Method::GET, "operation=GetCACert", Bytes::new())
        .await?;
    if status != 200 {
        bail!("GetCACert answered {status}");
    }
    let certs = scep::parse_get_ca_cert(&ct, &body)?;
    let ra = Arc::new(recipient(&certs)?);
    let cipher = match caps.cipher() {
        ContentCipher::Aes256Cbc if !caps.has("AES") => ContentCipher::Aes128Cbc,
        c => c,
    };

    // Every request prepared before the clock starts: the keys first, then the messages.
    let started = Instant::now();
    let n = opts.requests;
    let key_count = if opts.keys == 0 { n } else { opts.keys.min(n) };
    let keys = Arc::new(parallel(key_count, |_| -> Result<RsaKey> {
        Ok(RsaKey::generate_2048()?)
    })?);
    if let Challenges::PerRequest(c) = &opts.challenges
        && c.len() < n
    {
        bail!("{} challenges for {n} enrollments", c.len());
    }
    let challenges = Arc::new(opts.challenges.clone());
    let messages = parallel(n, move |i| -> Result<Bytes> {
        let key = &keys[i % keys.len()];
        let cn = format!("bench-{i}");
        let challenge = match &*challenges {
            Challenges::Static(c) => c,
            Challenges::PerRequest(c) => &c[i],
        };
        let csr = scep::rsa_csr(key, &cn, Some(challenge))?;
        let signer = scep::self_signed_rsa(key, &cn, time::OffsetDateTime::now_utc())?;
        // The key's hash (RFC 8894), made unique per request when keys are reused.
        let mut tx = scep::transaction_id_for(key.spki_der());
        if key_count < n {
            tx = format!("{tx}-{i}");
        }
        let (msg, _) = scep::build_pkcs_req(&csr, &tx, &signer, key, &ra, cipher, false)?;
        Ok(Bytes::from(msg))
    })?;
    let prepare_secs = started.elapsed().as_secs_f64();
    let messages = Arc::new(messages);

    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = own_cpu_ticks();
    let clock = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (target, messages, next) = (target.clone(), messages.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            let mut answered = 0usize;
            let mut conn = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= messages.len() {
                    return (lat, failed, answered);
                }
                if conn.is_none() {
                    conn = target.connect().await.ok();
                }
                let Some(c) = conn.as_mut() else {
                    failed += 1;
                    continue;
                };
                let t = Instant::now();
                match target
                    .call(
                        c,
                        Method::POST,
                        "operation=PKIOperation",
                        messages[i].clone(),
                    )
                    .await
                {
                    Ok((200, _, body)) if succeeded(&body) => {
                        answered += 1;
                        lat.push(t.elapsed());
                    }
                    Ok(_) => {
                        answered += 1;
                        failed += 1;
                    }
                    Err(_) => {
                        failed += 1;
                        conn = None;
                    }
                }
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    let mut failed = 0;
    let mut answered = 0;
    for w in workers {
        let (l, f, a) = w.await?;
        lat.extend(l);
        failed += f;
        answered += a;
    }
    let elapsed = clock.elapsed().as_secs_f64();
    let client_cpu_ms_per_request = match (cpu0, own_cpu_ticks()) {
        (Some(a), Some(b)) if answered > 0 => {
            Some(b.saturating_sub(a) as f64 * 1000.0 / TICKS_PER_SEC / answered as f64)
        }
        _ => None,
    };
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(BenchReport {
        url: opts.url,
        challenges: match opts.challenges {
            Challenges::Static(_) => "static",
            Challenges::PerRequest(_) => "one-time",
        },
        requests: opts.requests,
        succeeded: lat.len(),
        failed,
        answered,
        concurrency: opts.concurrency,
        cipher: cipher.name(),
        elapsed_secs: elapsed,
        enrollments_per_sec: lat.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        prepare_secs,
        client_cpu_ms_per_request,
    })
}
