//! Ferrocore's network edge: configuration, data directory, TLS listeners, the device and
//! admin HTTP APIs, and the `ferrocore` command line (server and admin CLI).
//!
//! Code map: [`config`] (TOML + env), [`datadir`] (first-start initialisation), [`tls`]
//! (server configs, client-certificate verification), [`listener`] (accept loop),
//! [`http`] (routers, handlers, error mapping, OpenAPI), [`cli`] (clap commands),
//! [`front_ends`] (trusted TLS-terminating proxies and their forwarded-certificate forms),
//! [`scep_ca`] (external SCEP CAs as enrollment configurations: Ferrocore as their RA),
//! [`directory_ldap`] (`[directory]`: Active Directory and LDAP sources over ldap3/rustls).

pub mod cli;
pub mod config;
pub mod crypto_pool;
pub mod datadir;
pub mod directory_ldap;
pub mod edge_io;
pub mod front_ends;
pub mod http;
pub mod listener;
pub mod portal_cert;
pub mod scep_ca;
pub mod tickets;
pub mod tls;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use ferrocore_core::directory::LocalDirectory;
use ferrocore_core::issuance::{KIND_LOCAL_CA, KIND_SCEP, LocalIssuer};
use ferrocore_core::service::{LOCAL_CONFIG, PkiPublication};
use ferrocore_core::store::EnrollmentConfigStore as _;
use ferrocore_core::{Clock, Core, SystemClock};
use ferrocore_store::SqliteStore;
use http::{AppState, ListenerKind, Ports};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::net::TcpListener;

/// Starts the server and runs until SIGINT/SIGTERM.
pub async fn serve(data_dir: &Path, config_file: Option<&Path>) -> Result<()> {
    let (config, addrs) =
        config::Config::load(config_file, std::env::vars()).map_err(|e| anyhow::anyhow!(e))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();

    match listener::raise_nofile_limit() {
        Ok((before, now)) => tracing::info!(
            limit = %limit_text(now),
            raised_from = %limit_text(before),
            "file descriptors: the server can hold about this many connections at once"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the file descriptor limit (RLIMIT_NOFILE)")
        }
    }

    let dir = datadir::DataDir::new(data_dir);
    dir.ensure()?;
    let ca_key_algorithm = config.ca.key_algorithm().map_err(|e| anyhow::anyhow!(e))?;
    let ca = dir.load_or_create_ca(ca_key_algorithm, now)?;
    let identity = dir.load_or_issue_server_identity(&ca, &config.server.hostnames, now)?;
    let admin_token = dir.load_or_create_admin_token()?;
    let store_options = ferrocore_store::StoreOptions {
        wal_limit_bytes: config
            .store
            .wal_limit_bytes()
            .map_err(|e| anyhow::anyhow!(e))?,
    };
    let store = Arc::new(
        SqliteStore::open_with(&dir.db_path(), &store_options)
            .await
            .with_context(|| format!("{}: cannot open database", dir.db_path().display()))?,
    );

    // Bind every listener before anything else so a taken port fails start-up cleanly.
    let bind = |key: &'static str, addr: std::net::SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!(bind_error(key, addr, &e)))
    };
    let device_tcp = bind("device", addrs.device).await?;
    let admin_tcp = bind("admin", addrs.admin).await?;
    let storefront_tcp = bind("storefront", addrs.storefront).await?;
    let sync_tcp = match addrs.sync_tls {
        Some(a) => Some(bind("sync_tls", a).await?),
        None => None,
    };
    let pki_tcp = match addrs.pki {
        Some(a) => Some(bind("pki", a).await?),
        None => None,
    };
    let ports = Ports {
        // Behind a front end, devices are told the front end's port.
        device: match config.server.public_device_port {
            Some(p) => p,
            None => device_tcp.local_addr()?.port(),
        },
        sync_tls: match &sync_tcp {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        },
    };

    // Certificates point relying parties at the plain-HTTP PKI listener when there is one
    // (CRL distribution point and OCSP), else at the device listener.
    let base_url = match &pki_tcp {
        Some(l) => format!(
            "http://{}:{}",
            url_host(&config.server.hostnames[0]),
            l.local_addr()?.port()
        ),
        None => format!(
            "https://{}:{}",
            url_host(&config.server.hostnames[0]),
            ports.device
        ),
    };
    let scep_ra = dir.load_or_issue_scep_ra(&ca, now)?;
    let ca_pem = ca.cert_pem();
    let issuer = Arc::new(LocalIssuer::new(ca));
    let (directory, directory_admin) = build_directory(&config.directory, &store, &clock)?;
    let core = Arc::new(Core::new(
        store.clone(),
        directory.clone(),
        issuer,
        clock.clone(),
        PkiPublication {
            ocsp_url: Some(format!("{base_url}/ocsp")),
            base_url: Some(base_url),
            local_crl_url: (!config.pki.crl_url.is_empty()).then(|| config.pki.crl_url.clone()),
            crl_dir: Some(dir.root().join("ca")),
        },
    ));
    // Enrollment configurations: the built-in local CA, and those the admin created.
    store
        .ensure_enrollment_config(LOCAL_CONFIG, "local_ca", &ca_pem, now.unix_timestamp())
        .await?;
    for c in store.enrollment_configs().await? {
        if c.name == LOCAL_CONFIG {
            continue;
        }
        match (c.kind.as_str(), &c.scep) {
            (KIND_LOCAL_CA, _) => {
                let ca = dir.load_config_ca(&c.name)?;
                core.install_issuer(&c.name, Arc::new(LocalIssuer::new(ca)));
            }
            (KIND_SCEP, Some(params)) => {
                let ca = scep_ca::ScepCa::load(dir.root(), &c.name, &c.ca_cert_pem, params)
                    .with_context(|| format!("enrollment configuration {:?}", c.name))?;
                core.install_issuer(&c.name, Arc::new(ca));
            }
            (kind, _) => anyhow::bail!(
                "enrollment configuration {:?}: unknown kind {kind:?} (or missing parameters)",
                c.name
            ),
        }
    }
    core.publish_crl().await?;
    refresh_ocsp_responders(&core, &dir)?;
    let sync_enabled = core.sync_tls_enabled().await?;

    let trust = Arc::new(tls::TrustStore::new(&core.trusted_ca_ders())?);
    let (chain, key) = tls::parse_identity(&identity.chain_pem, &identity.key_pem)?;
    let ticket_keys = match config.server.tls_ticket_lifetime_secs {
        0 => None,
        secs => Some(tickets::TicketKeys::new(
            &dir.load_or_create_ticket_secret()?,
            secs,
            clock.clone(),
        )),
    };
    let tls_state = tls::TlsState::new(chain, key, &trust, ticket_keys)?;
    let storefront = Arc::new(ferrocore_core::storefront::Storefront::new(
        core.clone(),
        directory.clone(),
        store.clone(),
    ));
    if storefront.auth_setting().await? == ferrocore_proto::StorefrontAuth::Certificate {
        tls_state.set_storefront_client_auth(true, &trust)?;
    }
    let storefront_tls = tls_state.storefront.clone();
    let device_tls = tls_state.device.clone();
    let plain_tls = tls_state.plain.clone();
    let state = Arc::new(AppState {
        core: core.clone(),
        trust: trust.clone(),
        tls: tls_state,
        data_dir: dir.clone(),
        ports,
        admin_token,
        sync_tls_enabled: AtomicBool::new(sync_enabled),
        front_ends: config.front_ends.policy().map_err(|e| anyhow::anyhow!(e))?,
        portal: http::portal::PortalState {
            hostnames: config.server.hostnames.clone(),
        },
        storefront: storefront.clone(),
        scep_ra: ArcSwap::from_pointee(scep_ra),
        ca_key_algorithm,
        directory: directory_admin,
    });
    if let Some(d) = &state.directory {
        spawn_directory_refresh(
            d.chain.clone(),
            std::time::Duration::from_secs(config.directory.refresh_interval_secs),
        );
    }

    let conns = Arc::new(listener::Connections::default());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut spawn =
        |kind: ListenerKind, tcp: TcpListener, tls_cfg: Option<Arc<ArcSwap<_>>>, router| {
            if let Ok(a) = tcp.local_addr() {
                tracing::info!(listener = kind.name(), address = %a, "listening");
            }
            tasks.push(tokio::spawn(listener::serve(
                listener::Listener {
                    kind,
                    tcp,
                    tls: tls_cfg,
                    router,
                    conns: conns.clone(),
                },
                state.clone(),
                shutdown_rx.clone(),
            )));
        };
    spawn(
        ListenerKind::Device,
        device_tcp,
        Some(device_tls.clone()),
        http::device_router(state.clone()),
    );
    if let Some(tcp) = sync_tcp {
        spawn(
            ListenerKind::SyncTls,
            tcp,
            Some(plain_tls.clone()),
            http::device_router(state.clone()),
        );
    }
    spawn(
        ListenerKind::Admin,
        admin_tcp,
        Some(plain_tls.clone()),
        http::admin_router(state.clone()),
    );
    spawn(
        ListenerKind::Storefront,
        storefront_tcp,
        Some(storefront_tls),
        http::storefront_router(state.clone()),
    );
    if let Some(tcp) = pki_tcp {
        spawn(
            ListenerKind::Pki,
            tcp,
            None,
            http::pki_router(state.clone()),
        );
    }

    // Housekeeping, hourly (and once at start): retire devices past the renewal grace, and
    // republish the CRL a day before its nextUpdate.
    let housekeeping = core.clone();
    let housekeeping_state = state.clone();
    let housekeeping_dir = dir.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = housekeeping.sweep_expired().await {
                tracing::error!(error = %e, "expiry sweep failed");
            }
            if let Err(e) = refresh_ocsp_responders(&housekeeping, &housekeeping_dir) {
                tracing::error!(error = %format!("{e:#}"), "OCSP signing certificate renewal failed");
            }
            let due = housekeeping.crl().next_update - housekeeping.clock().now().unix_timestamp();
            if due < 86_400
                && let Err(e) = housekeeping.publish_crl().await
            {
                tracing::error!(error = %e, "CRL republication failed");
            }
            renew_scep_ra(&housekeeping_state);
        }
    });

    tracing::info!(data_dir = %data_dir.display(), "ferrocore ready");
    println!("ferrocore ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    store.pool().close().await;
    Ok(())
}

/// The configured [`Directory`](ferrocore_core::directory::Directory): the local users alone,
/// or the chain of `[directory]` sources in their order.
fn build_directory(
    section: &directory_ldap::DirectorySection,
    store: &Arc<SqliteStore>,
    clock: &Arc<dyn Clock>,
) -> Result<(
    Arc<dyn ferrocore_core::directory::Directory>,
    Option<http::directory::DirectoryAdmin>,
)> {
    use ferrocore_core::directory_sources::{ChainDirectory, Member};
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let built = section.build(&env).map_err(|e| anyhow::anyhow!(e))?;
    if built.is_empty() {
        return Ok((Arc::new(LocalDirectory::new(store.clone())), None));
    }
    let mut sources = Vec::new();
    let mut members = Vec::new();
    let mut built = built.into_iter();
    for name in &section.order {
        if name == "local" {
            members.push(Member::Local);
        } else if let Some(b) = built.next() {
            sources.push(b.source.clone());
            members.push(Member::Source {
                source: b.source,
                settings: b.settings,
            });
        }
    }
    let chain = Arc::new(ChainDirectory::new(
        store.clone(),
        store.clone(),
        members,
        clock.clone(),
        section.failed_password_cache_secs,
    )?);
    tracing::info!(order = ?section.order, "directory sources configured");
    Ok((
        chain.clone(),
        Some(http::directory::DirectoryAdmin { chain, sources }),
    ))
}

/// Reads the directories' lockout policies and looks recorded directory users up again,
/// at start and every `interval`.
fn spawn_directory_refresh(
    chain: Arc<ferrocore_core::directory_sources::ChainDirectory>,
    interval: std::time::Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            chain.refresh_lockout_policies().await;
            match chain.refresh_users().await {
                Ok(r) if r.changed > 0 || r.unavailable > 0 => {
                    tracing::info!(
                        checked = r.checked,
                        changed = r.changed,
                        unavailable = r.unavailable,
                        "directory users refreshed"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "directory refresh failed"),
            }
        }
    });
}

/// Re-issues the SCEP RA certificate when it is about to expire (hourly check).
fn renew_scep_ra(state: &http::SharedState) {
    let now = state.core.clock().now();
    let due = ferrocore_pki::cert_info(&state.scep_ra.load().cert_der)
        .map(|i| i.not_after - now <= datadir::RA_RENEW_BEFORE)
        .unwrap_or(true);
    if due {
        match state
            .data_dir
            .load_or_issue_scep_ra(state.core.local_ca().ca(), now)
        {
            Ok(ra) => state.scep_ra.store(Arc::new(ra)),
            Err(e) => tracing::error!(error = %e, "SCEP RA re-issue failed"),
        }
    }
}

/// Gives every enrollment configuration a delegated OCSP responder: loads its signing
/// certificate from the data directory, or issues one when it is missing or near expiry.
/// Run at start (existing data directories upgrade), hourly, and when a configuration is added.
pub fn refresh_ocsp_responders(core: &Core, dir: &datadir::DataDir) -> Result<()> {
    use ferrocore_core::ocsp::{OCSP_SIGNER_LIFETIME, OCSP_SIGNER_RENEW_BEFORE};
    let now = core.clock().now();
    for name in core.issuer_names() {
        let fresh = core
            .ocsp_responder(&name)
            .is_some_and(|r| r.signer_not_after() - now > OCSP_SIGNER_RENEW_BEFORE);
        if fresh {
            continue;
        }
        let issuer = core.issuer(&name)?;
        // Only CAs Ferrocore holds get a responder: an external CA answers for itself.
        let Some(ca) = issuer.local_ca() else {
            continue;
        };
        let (responder, _) = dir.load_or_issue_ocsp_responder(
            &name,
            ca,
            now,
            OCSP_SIGNER_LIFETIME,
            OCSP_SIGNER_RENEW_BEFORE,
        )?;
        core.install_ocsp_responder(&name, Arc::new(responder));
    }
    Ok(())
}

fn limit_text(l: Option<u64>) -> String {
    l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// The start-up line for a listener that cannot bind; for a refused low port, how to proceed.
fn bind_error(key: &str, addr: std::net::SocketAddr, e: &std::io::Error) -> String {
    let mut line = format!("listeners.{key}: cannot listen on {addr}: {e}");
    if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
        // The README's unprivileged ports.
        let example = match key {
            "admin" => 8444,
            "storefront" => 7443,
            "sync_tls" => 9997,
            "pki" => 8080,
            _ => 8443,
        };
        line.push_str(&format!(
            " (ports below 1024 need privileges: move the listener with FERROCORE_LISTENERS_{}=127.0.0.1:{example} \
             or listeners.{key} in the configuration file, or let the binary bind low ports: \
             sudo setcap cap_net_bind_service=+ep \"$(command -v ferrocore)\")",
            key.to_ascii_uppercase()
        ));
    }
    line
}

fn url_host(h: &str) -> String {
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => h.to_owned(),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
