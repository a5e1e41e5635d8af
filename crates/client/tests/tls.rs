//! End-to-end tests of `ferrocore-client` against a tiny in-test tokio-rustls + hyper server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use ferrocore_client::{ClientError, ClientIdentity, ClientOptions, Method, TlsClient};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::net::TcpListener;

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Pki {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

fn leaf(pki: &Pki, sans: &[&str], eku: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![eku];
    let cert = params.signed_by(&key, &pki.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[derive(Debug, Serialize, Deserialize)]
struct Echo {
    method: String,
    path: String,
    host: String,
    authorization: Option<String>,
    content_length: Option<String>,
    connection: Option<String>,
    body: String,
    client_cert: bool,
    resumed: bool,
}

/// Start a server on 127.0.0.1; `client_ca`: verify client certs against it
/// (`require`: reject connections without one).
async fn server(pki: &Pki, client_ca: Option<(&str, bool)>) -> (u16, tokio::task::JoinHandle<()>) {
    let (cert_pem, key_pem) = leaf(
        pki,
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match client_ca {
        None => builder.with_no_client_auth(),
        Some((ca, require)) => {
            let roots = Arc::new(ferrocore_client::root_store_from_pem(ca).unwrap());
            let v = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let v = if require {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(v.build().unwrap())
        }
    }
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, conn) = tls.get_ref();
                let client_cert = conn.peer_certificates().is_some();
                let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                let svc = service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        let hdr = |n: &str| {
                            req.headers()
                                .get(n)
                                .map(|v| v.to_str().unwrap().to_string())
                        };
                        let method = req.method().to_string();
                        let path = req.uri().to_string();
                        let host = hdr("host").unwrap_or_default();
                        let authorization = hdr("authorization");
                        let content_length = hdr("content-length");
                        let connection = hdr("connection");
                        let body = req.into_body().collect().await?.to_bytes();
                        let (status, out) = match path.as_str() {
                            "/error" => (
                                409,
                                r#"{"error":{"code":"conflict","message":"nope"}}"#.to_string(),
                            ),
                            "/plain" => (502, "bad gateway".to_string()),
                            _ => (
                                200,
                                serde_json::to_string(&Echo {
                                    method,
                                    path,
                                    host,
                                    authorization,
                                    content_length,
                                    connection,
                                    body: String::from_utf8_lossy(&body).into_owned(),
                                    client_cert,
                                    resumed,
                                })
                                .unwrap(),
                            ),
                        };
                        Ok::<_, hyper::Error>(
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(out)))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn request_round_trips() {
    let pki = new_ca("test ca");
    let (port, _srv) = server(&pki, None).await;
    let client = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();

    let resp = client
        .request(
            &format!("https://localhost:{port}/echo?x=1"),
            Method::POST,
            &[("x-test", "1")],
            b"hello".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    let echo: Echo = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/echo?x=1");
    assert_eq!(echo.host, format!("localhost:{port}"));
    assert_eq!(echo.body, "hello");
    assert_eq!(echo.content_length.as_deref(), Some("5"));
    assert_eq!(echo.connection.as_deref(), Some("close"));
    assert!(!echo.client_cert);

    // IP host, JSON helper, bearer token.
    let client = TlsClient::new(
        &pki.ca_pem,
        None,
        ClientOptions {
            bearer_token: Some("tok".into()),
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let echo: Echo = client
        .post_json(&format!("https://127.0.0.1:{port}/json"), &[1, 2, 3])
        .await
        .unwrap();
    assert_eq!(echo.body, "[1,2,3]");
    assert_eq!(echo.authorization.as_deref(), Some("Bearer tok"));
    let echo: Echo = client
        .get_json(&format!("https://127.0.0.1:{port}/get"))
        .await
        .unwrap();
    assert_eq!(echo.method, "GET");
    assert_eq!(echo.content_length, None);
}

#[tokio::test]
async fn api_errors_are_mapped() {
    let pki = new_ca("test ca");
    let (port, _srv) = server(&pki, None).await;
    let client = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();
    let err = client
        .post_json::<_, Echo>(&format!("https://localhost:{port}/error"), &())
        .await
        .unwrap_err();
    match err {
        ClientError::Api {
            status,
            code,
            message,
        } => {
            assert_eq!(
                (status, code.as_str(), message.as_str()),
                (409, "conflict", "nope")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = client
        .get_json::<Echo>(&format!("https://localhost:{port}/plain"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(err.label(), "http_502");
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let pki = new_ca("server ca");
    let device_ca = new_ca("device ca");
    let (port, _srv) = server(&pki, Some((&device_ca.ca_pem, false))).await;
    let (cert_pem, key_pem) = leaf(&device_ca, &[], ExtendedKeyUsagePurpose::ClientAuth);
    let identity = ClientIdentity {
        cert_chain_pem: cert_pem,
        key_pem,
    };
    let client = TlsClient::new(&pki.ca_pem, Some(identity), ClientOptions::default()).unwrap();
    let echo: Echo = client
        .get_json(&format!("https://localhost:{port}/"))
        .await
        .unwrap();
    assert!(echo.client_cert);

    let anon = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();
    let echo: Echo = anon
        .get_json(&format!("https://localhost:{port}/"))
        .await
        .unwrap();
    assert!(!echo.client_cert);
}

#[tokio::test]
async fn missing_required_client_certificate_is_a_tls_error() {
    let pki = new_ca("server ca");
    let (port, _srv) = server(&pki, Some((&pki.ca_pem, true))).await;
    let anon = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();
    let err = anon
        .get_json::<Echo>(&format!("https://localhost:{port}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
}

#[tokio::test]
async fn wrong_ca_fails_with_tls_error() {
    let pki = new_ca("server ca");
    let other = new_ca("other ca");
    let (port, _srv) = server(&pki, None).await;
    let client = TlsClient::new(&other.ca_pem, None, ClientOptions::default()).unwrap();
    let err = client
        .request(
            &format!("https://localhost:{port}/"),
            Method::GET,
            &[],
            Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert_eq!(err.label(), "tls");
}

#[tokio::test]
async fn session_resumption_can_be_disabled() {
    let pki = new_ca("server ca");
    let (port, _srv) = server(&pki, None).await;
    let url = format!("https://localhost:{port}/");
    for (resumption, expect_resumed) in [(true, true), (false, false)] {
        let client = TlsClient::new(
            &pki.ca_pem,
            None,
            ClientOptions {
                session_resumption: resumption,
                ..ClientOptions::default()
            },
        )
        .unwrap();
        let first: Echo = client.get_json(&url).await.unwrap();
        assert!(!first.resumed);
        let second: Echo = client.get_json(&url).await.unwrap();
        assert_eq!(second.resumed, expect_resumed, "resumption={resumption}");
    }
}

#[tokio::test]
async fn keep_alive_connection_reuses_one_connection() {
    let pki = new_ca("server ca");
    let (port, _srv) = server(&pki, None).await;
    let client = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();
    let mut conn = client
        .connect(&format!("https://localhost:{port}"))
        .await
        .unwrap();
    for i in 0..3 {
        let resp = conn
            .send(Method::POST, "/ka", &[], format!("n{i}").into_bytes())
            .await
            .unwrap();
        let echo: Echo = resp.json().unwrap();
        assert_eq!(echo.body, format!("n{i}"));
        assert_eq!(echo.connection, None);
    }
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn connection_refused_is_io() {
    let pki = new_ca("server ca");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = TlsClient::new(&pki.ca_pem, None, ClientOptions::default()).unwrap();
    let err = client
        .request(
            &format!("https://127.0.0.1:{port}/"),
            Method::GET,
            &[],
            Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Io(_)), "{err:?}");
}
