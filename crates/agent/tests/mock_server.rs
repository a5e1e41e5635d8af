//! End-to-end test of the agent CLI against a small mock of the device API
//! (register with CSR signing, check-in by client certificate or device secret).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ferrocore_agent::cli::{Cli, execute};
use ferrocore_proto::{
    AuthMode, CheckinEndpoint, CheckinResponse, ErrorBody, ErrorDetail, Listener, PolicyInfo,
    RegisterRequest, RegisterResponse,
};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

struct Mock {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    port: u16,
    /// device uuid -> (mode, secret)
    devices: Mutex<HashMap<String, (AuthMode, String)>>,
    checkins: Mutex<u64>,
}

fn json_response(status: u16, body: &impl serde::Serialize) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

fn error(status: u16, code: &str) -> hyper::Response<Full<Bytes>> {
    json_response(
        status,
        &ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: format!("mock says {code}"),
            },
        },
    )
}

fn policy() -> PolicyInfo {
    PolicyInfo {
        name: "default".into(),
        checkin_interval_secs: 60,
    }
}

fn handle(
    mock: &Mock,
    path: &str,
    headers: &hyper::HeaderMap,
    peer_cn: Option<String>,
    body: &[u8],
) -> hyper::Response<Full<Bytes>> {
    match path {
        "/api/v1/register" => {
            let req: RegisterRequest = serde_json::from_slice(body).unwrap();
            if req.password != "pw" {
                return error(401, "invalid_credentials");
            }
            let mode = if req.username == "legacy" {
                AuthMode::Legacy
            } else {
                AuthMode::Mutual
            };
            let (certificate_pem, device_secret) = match mode {
                AuthMode::Mutual => {
                    let csr = rcgen::CertificateSigningRequestParams::from_pem(
                        req.csr_pem.as_deref().unwrap(),
                    )
                    .unwrap();
                    (Some(csr.signed_by(&mock.issuer).unwrap().pem()), None)
                }
                AuthMode::Legacy => (None, Some(format!("secret-{}", req.device_uuid))),
            };
            mock.devices.lock().unwrap().insert(
                req.device_uuid.clone(),
                (mode, device_secret.clone().unwrap_or_default()),
            );
            json_response(
                200,
                &RegisterResponse {
                    device_id: format!("id-{}", req.device_uuid),
                    mode,
                    checkin: CheckinEndpoint {
                        listener: Listener::Device,
                        port: mock.port,
                    },
                    certificate_pem,
                    ca_pem: mock.ca_pem.clone(),
                    device_secret,
                    policy: policy(),
                },
            )
        }
        "/api/v1/checkin" => {
            let devices = mock.devices.lock().unwrap();
            let (uuid, mode) = if let Some(cn) = peer_cn {
                match devices.get(&cn) {
                    Some((AuthMode::Mutual, _)) => (cn, AuthMode::Mutual),
                    _ => return error(403, "certificate_unknown"),
                }
            } else if let Some(v) = headers.get("x-ferrocore-device-secret") {
                let v = v.to_str().unwrap();
                let (uuid, secret) = v.split_once(':').unwrap();
                match devices.get(uuid) {
                    Some((AuthMode::Legacy, s)) if s == secret => {
                        (uuid.to_string(), AuthMode::Legacy)
                    }
                    _ => return error(401, "unauthorized"),
                }
            } else {
                return error(401, "client_certificate_required");
            };
            *mock.checkins.lock().unwrap() += 1;
            // Legacy devices are told to use the sync-TLS listener (same port in this mock).
            let listener = match mode {
                AuthMode::Mutual => Listener::Device,
                AuthMode::Legacy => Listener::SyncTls,
            };
            json_response(
                200,
                &CheckinResponse {
                    device_id: format!("id-{uuid}"),
                    mode,
                    checkin: CheckinEndpoint {
                        listener,
                        port: mock.port,
                    },
                    policy: policy(),
                    actions: vec![],
                    server_time: 0,
                    certificate: None,
                },
            )
        }
        _ => error(404, "not_found"),
    }
}

/// Start the mock on its own thread and runtime; returns it once listening.
fn start_mock(dir: &std::path::Path) -> Arc<Mock> {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mock ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();

    let srv_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let srv_cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&srv_key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(ferrocore_client::root_store_from_pem(&ca_pem).unwrap());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(srv_cert.pem().as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(srv_key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let mock = Arc::new(Mock {
        ca_pem,
        issuer,
        port,
        devices: Mutex::default(),
        checkins: Mutex::default(),
    });
    let m = mock.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (acceptor, m) = (acceptor.clone(), m.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let peer_cn = tls.get_ref().1.peer_certificates().map(|c| {
                        let (_, cert) = x509_parser::parse_x509_certificate(&c[0]).unwrap();
                        let cn = cert.subject().iter_common_name().next().unwrap();
                        cn.as_str().unwrap().to_string()
                    });
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (m, peer_cn) = (m.clone(), peer_cn.clone());
                        async move {
                            let path = req.uri().path().to_string();
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(handle(&m, &path, &headers, peer_cn, &body))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
    });
    mock
}

fn run(args: &[&str]) -> ExitCode {
    let cli = <Cli as clap::Parser>::try_parse_from(
        std::iter::once("ferrocore-agent").chain(args.iter().copied()),
    )
    .unwrap();
    match execute(cli) {
        Ok(c) => c,
        Err(e) => ferrocore_agent::cli::report_error(&e),
    }
}

fn state_json(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap()
}

#[test]
fn register_checkin_and_swarm_against_mock() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = start_mock(tmp.path());
    let url = format!("https://127.0.0.1:{}", mock.port);
    let ca = tmp.path().join("ca.pem");
    let ca = ca.to_str().unwrap();

    // Mutual device.
    let m = tmp.path().join("mutual");
    let m_s = m.to_str().unwrap();
    let reg = |state: &str, user: &str, password: &str| {
        run(&[
            "--state",
            state,
            "register",
            "--url",
            &url,
            "--ca",
            ca,
            "--user",
            user,
            "--password",
            password,
            "--platform",
            "ios",
            "--client-kind",
            "mdm",
            "--client-version",
            "17.0",
        ])
    };
    assert_eq!(reg(m_s, "alice", "pw"), ExitCode::SUCCESS);
    assert!(m.join("cert.pem").is_file() && !m.join("secret").exists());
    let uuid = state_json(&m)["device_uuid"].as_str().unwrap().to_string();
    assert_eq!(state_json(&m)["mode"], "mutual");
    assert_eq!(run(&["--state", m_s, "checkin"]), ExitCode::SUCCESS);
    assert!(state_json(&m)["last_checkin_at"].is_i64());
    assert_eq!(run(&["--state", m_s, "status"]), ExitCode::SUCCESS);
    // Re-registering keeps the uuid; bad password is an API error (exit 2).
    assert_eq!(reg(m_s, "alice", "pw"), ExitCode::SUCCESS);
    assert_eq!(state_json(&m)["device_uuid"].as_str().unwrap(), uuid);
    assert_eq!(reg(m_s, "alice", "wrong"), ExitCode::from(2));

    // Legacy device: secret header, and the server's new listener is followed.
    let l = tmp.path().join("legacy");
    let l_s = l.to_str().unwrap();
    assert_eq!(reg(l_s, "legacy", "pw"), ExitCode::SUCCESS);
    assert!(l.join("secret").is_file() && !l.join("cert.pem").exists());
    assert_eq!(state_json(&l)["checkin"]["listener"], "device");
    assert_eq!(run(&["--state", l_s, "checkin"]), ExitCode::SUCCESS);
    assert_eq!(state_json(&l)["checkin"]["listener"], "sync_tls");
    // A wrong secret is an API error.
    std::fs::write(l.join("secret"), "nope").unwrap();
    assert_eq!(run(&["--state", l_s, "checkin"]), ExitCode::from(2));

    // Unreachable server: exit 1.
    let mut st = state_json(&m);
    st["checkin"]["port"] = 1.into();
    std::fs::write(m.join("state.json"), st.to_string()).unwrap();
    assert_eq!(run(&["--state", m_s, "checkin"]), ExitCode::from(1));

    // Swarm.
    let s = tmp.path().join("swarm");
    let s_s = s.to_str().unwrap();
    assert_eq!(
        run(&[
            "swarm",
            "enroll",
            "--state",
            s_s,
            "--url",
            &url,
            "--ca",
            ca,
            "--user",
            "bob",
            "--password",
            "pw",
            "--devices",
            "5",
            "--concurrency",
            "3",
            "--threads",
            "1",
        ]),
        ExitCode::SUCCESS
    );
    assert!(s.join("devices/00004/cert.pem").is_file());
    assert!(!s.join("devices/00005").exists());
    assert_eq!(
        run(&[
            "swarm",
            "enroll",
            "--state",
            &format!("{s_s}/l"),
            "--url",
            &url,
            "--ca",
            ca,
            "--user",
            "legacy",
            "--password",
            "pw",
            "--devices",
            "2",
        ]),
        ExitCode::SUCCESS
    );
    let before = *mock.checkins.lock().unwrap();
    assert_eq!(
        run(&[
            "swarm",
            "run",
            "--state",
            s_s,
            "--concurrency",
            "4",
            "--requests",
            "20",
            "--threads",
            "2",
            "--json",
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(*mock.checkins.lock().unwrap() - before, 20);
    // Legacy swarm with a rate limit and a duration; then an explicit target URL.
    assert_eq!(
        run(&[
            "swarm",
            "run",
            "--state",
            &format!("{s_s}/l"),
            "--concurrency",
            "2",
            "--duration",
            "0.5",
            "--rate",
            "20",
        ]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        run(&[
            "swarm",
            "run",
            "--state",
            s_s,
            "--url",
            &format!("https://localhost:{}", mock.port),
            "--concurrency",
            "2",
            "--requests",
            "4",
        ]),
        ExitCode::SUCCESS
    );
}

#[test]
fn swarm_reports_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let mock = start_mock(tmp.path());
    let url = format!("https://127.0.0.1:{}", mock.port);
    let ca = tmp.path().join("ca.pem");
    let params = ferrocore_agent::device::RegisterParams {
        url,
        username: "carol".into(),
        password: "pw".into(),
        platform: ferrocore_proto::Platform::Android,
        client_kind: ferrocore_proto::ClientKind::Agent,
        client_version: "1.0".into(),
        device_uuid: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let enroll = rt
        .block_on(ferrocore_agent::swarm::enroll(
            ferrocore_agent::swarm::EnrollOptions {
                state: tmp.path().join("s"),
                params,
                ca_pem: std::fs::read_to_string(&ca).unwrap(),
                devices: 3,
                concurrency: 2,
            },
        ))
        .unwrap();
    assert_eq!((enroll.registered, enroll.mutual, enroll.errors), (3, 3, 0));
    // Forget one device on the server: its check-ins fail with the API code.
    let forgotten = state_json(&tmp.path().join("s/devices/00001"))["device_uuid"]
        .as_str()
        .unwrap()
        .to_string();
    mock.devices.lock().unwrap().remove(&forgotten);
    let report = rt
        .block_on(ferrocore_agent::swarm::run(
            ferrocore_agent::swarm::RunOptions {
                state: tmp.path().join("s"),
                target: None,
                extra_ca_pem: None,
                concurrency: 3,
                limit: ferrocore_agent::swarm::Limit::Requests(9),
                rate: None,
                timeout: std::time::Duration::from_secs(10),
                resume: false,
                give_up_after: std::time::Duration::from_secs(10),
            },
        ))
        .unwrap();
    assert_eq!((report.requests, report.ok, report.errors), (9, 6, 3));
    assert_eq!(report.errors_by_kind.get("certificate_unknown"), Some(&3));
    assert!(report.p50_ms > 0.0 && report.max_ms >= report.p99_ms);
}
