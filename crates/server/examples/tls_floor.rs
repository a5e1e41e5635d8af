//! The check-in benchmark's floor (`bench/checkin.sh`): the device listener's TLS alone.
//! Same rustls configuration as `ferrocore serve` (`tls::server_config`: provider, deferred
//! client-certificate verification, session tickets from the same kind of secret), the same
//! `TrustStore::verify` of the client certificate per connection, then one fixed HTTP answer
//! per request: no HTTP router, no domain, no database. What Ferrocore spends above this is
//! the cost of everything that is not TLS.
//!
//! `tls_floor DATA_DIR ADDR [--no-tickets]`: certificates from a Ferrocore data directory
//! (`tls/server.pem`, `tls/server.key`, `ca/ca.pem`, `tls/ticket.key`).

use anyhow::{Context, Result};
use ferrocore_core::clock::{Clock, SystemClock};
use ferrocore_server::tls::{self, ClientCert, TrustStore};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";
const REFUSED: &[u8] =
    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(addr)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: tls_floor DATA_DIR ADDR [--no-tickets]");
    };
    let dir = std::path::PathBuf::from(dir);
    let tickets = !args.iter().any(|a| a == "--no-tickets");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).with_context(|| p.to_owned());
    let (chain, key) = tls::parse_identity(&read("tls/server.pem")?, &read("tls/server.key")?)?;
    let ca = pem::parse(read("ca/ca.pem")?)?;
    let trust = Arc::new(TrustStore::new(&[ca.contents().to_vec()])?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let keys = if tickets {
        let hex_secret = read("tls/ticket.key")?;
        let secret: [u8; ferrocore_server::tickets::SECRET_LEN] = hex::decode(hex_secret.trim())?
            .try_into()
            .map_err(|_| anyhow::anyhow!("tls/ticket.key: not 32 bytes"))?;
        Some(ferrocore_server::tickets::TicketKeys::new(
            &secret,
            ferrocore_server::tickets::MAX_LIFETIME_SECS,
            clock.clone(),
        ))
    } else {
        None
    };
    let config = tls::server_config(chain, key, Some(&trust), keys.as_ref())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("tls_floor ready on {addr}");
            loop {
                let (tcp, _) = match listener.accept().await {
                    Ok(a) => a,
                    Err(_) => continue,
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, trust, clock) = (acceptor.clone(), trust.clone(), clock.clone());
                tokio::spawn(async move {
                    let Ok(mut stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let verified = match stream.get_ref().1.peer_certificates() {
                        Some(chain) => {
                            matches!(trust.verify(chain, clock.now()), ClientCert::Verified(_))
                        }
                        None => false,
                    };
                    // Read the request: header, then Content-Length bytes of body.
                    let mut buf = Vec::with_capacity(1024);
                    let mut chunk = [0u8; 1024];
                    let mut want = None;
                    loop {
                        if want.is_none()
                            && let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n")
                        {
                            want = Some(end + 4 + content_length(&buf[..end]));
                        }
                        if want.is_some_and(|w| buf.len() >= w) || buf.len() > 64 * 1024 {
                            break;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let answer = if verified { ANSWER } else { REFUSED };
                    let _ = stream.write_all(answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        })
}

fn content_length(header: &[u8]) -> usize {
    String::from_utf8_lossy(header)
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}
