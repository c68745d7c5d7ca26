//! Transport security and overload guards, in process: start-up fails closed on bad TLS material
//! (naming the file), handshakes are refused without a CA-signed client certificate on the peer
//! listener, cleartext and TLS 1.2 are refused, and the serve loop's connection cap, header
//! deadline and per-IP rate limit keep a well-behaved client served.

use node::config::Config;
use node::security::pki::{self, DevPki};
use node::security::tls;
use node::{Node, RunningNode};
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::https::Alpn;
use test_support::ports::free_addr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn hosts() -> Vec<String> {
    vec!["127.0.0.1".into(), "localhost".into()]
}

fn config(tls: Option<tls::TlsSection>, limits: &[(&str, &str)]) -> Config {
    let mut overrides: Vec<(String, String)> = vec![
        ("node_id".into(), "1".into()),
        ("api_addr".into(), "127.0.0.1:1".into()),
        ("peer_addr".into(), "127.0.0.1:2".into()),
        ("amnesia".into(), "true".into()),
        // These tests are about the transport; capabilities have their own (tests/auth.rs).
        ("auth.enabled".into(), "false".into()),
        // Replaced below by the test's own [tls] section.
        ("tls.mtls_required".into(), "false".into()),
    ];
    for (k, v) in limits {
        overrides.push((format!("limits.{k}"), v.to_string()));
    }
    let mut c = node::config::load(None, vec![], &overrides).unwrap();
    c.api_addr = "127.0.0.1:0".parse().unwrap();
    c.peer_addr = "127.0.0.1:0".parse().unwrap();
    c.log.level = "warn".into();
    if let Some(t) = tls {
        c.tls = t;
    }
    c
}

fn pki(dir: &Path) -> DevPki {
    pki::generate_dev_pki(dir, 1, &hosts(), 2).unwrap()
}

async fn start_err(section: tls::TlsSection) -> String {
    match Node::start(config(Some(section), &[])).await {
        Ok(n) => {
            n.shutdown().await;
            panic!("started with bad TLS material")
        }
        Err(e) => format!("{e:#}"),
    }
}

/// [`test_support::https::client`] for `pki`'s CA, with its client identity or without one.
fn https(pki: &DevPki, identity: bool) -> reqwest::Client {
    let (cert, key) = &pki.client;
    test_support::https::client(
        &pki.ca_cert,
        identity.then_some((cert.as_path(), key.as_path())),
        None,
        Duration::from_secs(5),
        Alpn::H2Http1,
    )
}

/// Open a TLS connection with `config` and ask for `/`; true when an HTTP answer came back.
async fn tls_exchange(addr: &str, config: rustls::ClientConfig) -> bool {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await
    else {
        return false;
    };
    // TLS 1.3: the server judges the client certificate after the client's handshake is done;
    // a refusal arrives as an alert on the first read.
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    matches!(read, Ok(Ok(_)) | Ok(Err(_))) && buf.starts_with(b"HTTP/1.1")
}

fn pem_identity(cert: &Path, key: &Path) -> (Vec<u8>, Vec<u8>) {
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

#[tokio::test]
async fn start_refuses_bad_tls_material_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = pki(&dir.path().join("good"));
    let other = pki(&dir.path().join("other"));
    let now = time::OffsetDateTime::now_utc();
    let expired = pki::generate_pki_valid(
        &dir.path().join("expired"),
        1,
        &hosts(),
        now - time::Duration::days(10),
        now - time::Duration::days(1),
    )
    .unwrap();
    let future = pki::generate_pki_valid(
        &dir.path().join("future"),
        1,
        &hosts(),
        now + time::Duration::days(1),
        now + time::Duration::days(10),
    )
    .unwrap();
    let base = good.section(1).unwrap();
    let open_key = dir.path().join("open.key");
    std::fs::copy(&good.nodes[0].1, &open_key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    // A directory where the key should be: exists but cannot be read (root reads any file).
    let unreadable = dir.path().join("unreadable.key");
    std::fs::create_dir(&unreadable).unwrap();

    let cases: Vec<(&str, tls::TlsSection, &Path, &str)> = vec![
        (
            "missing cert",
            tls::TlsSection {
                cert_file: Some(missing.clone()),
                ..base.clone()
            },
            &missing,
            "not found",
        ),
        (
            "unreadable key",
            tls::TlsSection {
                key_file: Some(unreadable.clone()),
                ..base.clone()
            },
            &unreadable,
            "cannot read",
        ),
        (
            "key mode 0644",
            tls::TlsSection {
                key_file: Some(open_key.clone()),
                ..base.clone()
            },
            &open_key,
            "644",
        ),
        (
            "no PEM in cert",
            tls::TlsSection {
                cert_file: Some(garbage.clone()),
                ..base.clone()
            },
            &garbage,
            "no PEM",
        ),
        (
            "expired cert",
            tls::TlsSection {
                ca_file: Some(expired.ca_cert.clone()),
                ..expired.section(1).unwrap()
            },
            &expired.nodes[0].0,
            "xpired",
        ),
        (
            "not yet valid cert",
            future.section(1).unwrap(),
            &future.nodes[0].0,
            "not valid yet",
        ),
        (
            "cert from another CA",
            tls::TlsSection {
                ca_file: Some(other.ca_cert.clone()),
                ..base.clone()
            },
            &good.nodes[0].0,
            // Both dev CAs share a name: webpki finds the wrong issuer and its signature fails.
            "invalid peer certificate",
        ),
    ];
    for (name, section, file, what) in cases {
        let e = start_err(section).await;
        println!("{name}: {e}");
        assert!(
            e.contains(&file.display().to_string()),
            "{name}: {e} should name {}",
            file.display()
        );
        assert!(
            e.to_lowercase().contains(&what.to_lowercase()),
            "{name}: {e} should say {what}"
        );
    }
}

async fn tls_node(pki: &DevPki, extra: &[(&str, &str)]) -> RunningNode {
    Node::start(config(Some(pki.section(1).unwrap()), extra))
        .await
        .unwrap()
}

#[tokio::test]
async fn cleartext_and_tls12_are_refused_and_tls_clients_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let n = tls_node(&pki, &[]).await;
    let failures = node::metrics::tls_handshake_failure_count();

    let mut tcp = TcpStream::connect(&n.api_addr).await.unwrap();
    tcp.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"HTTP/"),
        "cleartext got an HTTP answer: {:?}",
        String::from_utf8_lossy(&buf)
    );

    let ca = std::fs::read(&pki.ca_cert).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let tls12 = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    assert!(!tls_exchange(&n.api_addr, tls12).await, "TLS 1.2 accepted");

    let status = https(&pki, false)
        .get(format!("https://{}/v1/status", n.api_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert!(node::metrics::tls_handshake_failure_count() >= failures + 2);
    n.shutdown().await;
}

#[tokio::test]
async fn peer_listener_requires_a_client_certificate_from_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir.path().join("a"));
    let other = pki_other(&dir.path().join("b"));
    let n = tls_node(&pki, &[]).await;
    let ca = std::fs::read(&pki.ca_cert).unwrap();
    let failures = node::metrics::tls_handshake_failure_count();

    let anonymous = tls::client_config(&ca, None).unwrap();
    assert!(
        !tls_exchange(&n.peer_addr, anonymous).await,
        "no client cert accepted"
    );

    let (cert, key) = pem_identity(&other.client.0, &other.client.1);
    let foreign = tls::client_config(&ca, Some((&cert, &key))).unwrap();
    assert!(
        !tls_exchange(&n.peer_addr, foreign).await,
        "foreign cert accepted"
    );
    assert!(node::metrics::tls_handshake_failure_count() >= failures + 2);

    // The cluster's own client identity (signed by the client CA) is not a node: the peer
    // listener refuses it, so it can neither speak Raft nor forward writes past capabilities.
    let (cert, key) = pem_identity(&pki.client.0, &pki.client.1);
    let client_identity = tls::client_config(&ca, Some((&cert, &key))).unwrap();
    assert!(
        !tls_exchange(&n.peer_addr, client_identity.clone()).await,
        "a client certificate was accepted on the peer listener"
    );
    assert!(
        tls_exchange(&n.api_addr, client_identity).await,
        "the client certificate is for the client API"
    );

    let (cert, key) = pem_identity(&pki.nodes[0].0, &pki.nodes[0].1);
    let member = tls::client_config(&ca, Some((&cert, &key))).unwrap();
    assert!(
        tls_exchange(&n.peer_addr, member).await,
        "member cert refused"
    );

    // The client API takes clients without a certificate (client_auth = optional) but still
    // refuses one signed by another CA.
    let anonymous = tls::client_config(&ca, None).unwrap();
    assert!(tls_exchange(&n.api_addr, anonymous).await);
    let foreign = tls::client_config(&ca, Some((&cert_of(&other), &key_of(&other)))).unwrap();
    assert!(!tls_exchange(&n.api_addr, foreign).await);
    n.shutdown().await;
}

fn pki_other(dir: &Path) -> DevPki {
    pki(dir)
}

fn cert_of(p: &DevPki) -> Vec<u8> {
    std::fs::read(&p.client.0).unwrap()
}

fn key_of(p: &DevPki) -> Vec<u8> {
    std::fs::read(&p.client.1).unwrap()
}

#[tokio::test]
async fn a_three_node_cluster_replicates_and_forwards_over_mtls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::generate_dev_pki(dir.path(), 3, &hosts(), 2).unwrap();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let mut c = config(pki.section(id as usize), &[]);
        c.node_id = id;
        c.api_addr = free_addr();
        c.peer_addr = free_addr();
        c.raft.heartbeat_ms = 50;
        c.raft.election_timeout_min_ms = 300;
        c.raft.election_timeout_max_ms = 600;
        nodes.push(Node::start(c).await.unwrap());
    }
    let leader = node::dev::initialize(&nodes, Duration::from_secs(10))
        .await
        .unwrap();
    let follower = nodes.iter().find(|n| n.node.id != leader).unwrap();
    let client = https(&pki, false);
    // A write on a follower is forwarded to the leader over the peer listener (mTLS).
    let body = r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1}]"#;
    let r = client
        .post(format!("https://{}/v1/accounts", follower.api_addr))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
    // A linearizable read on a follower is proxied to the leader's API over TLS.
    let r = client
        .get(format!("https://{}/v1/accounts/2", follower.api_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn slowloris_and_a_flood_leave_a_well_behaved_client_served() {
    let n = Node::start(config(
        None,
        &[
            ("rate_per_peer_per_sec", "50"),
            ("rate_burst", "100"),
            ("header_read_timeout_ms", "1000"),
        ],
    ))
    .await
    .unwrap();
    let addr: SocketAddr = n.api_addr.parse().unwrap();

    // 200 connections that send half a header and stall.
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }

    // A flood from 127.0.0.1 beyond its rate limit.
    let flood = reqwest::Client::new();
    let url = format!("http://{addr}/v1/status");
    let mut busy = None;
    for _ in 0..300 {
        let r = flood.get(&url).send().await.unwrap();
        if r.status() == 429 {
            busy = Some(r);
            break;
        }
    }
    let busy = busy.expect("the flood was never rate limited");
    assert!(busy.headers().contains_key("retry-after"));
    let text = busy.text().await.unwrap();
    assert!(text.contains("\"busy\""), "{text}");

    // A well-behaved client from another address is answered within a second.
    let polite = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = polite.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // The stalled connections are closed at the header deadline.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut closed = 0;
    for s in &mut stalled {
        let mut buf = [0u8; 256];
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 190,
        "only {closed} of 200 stalled connections closed"
    );
    n.shutdown().await;
}

/// Send up to `max` `GET /v1/status` with `x-ron-forwarded`; how many were answered before the
/// first 429 (`max` when none was).
async fn relayed_until_busy(client: &reqwest::Client, url: &str, max: usize) -> usize {
    for sent in 0..max {
        let r = client
            .get(url)
            .header("x-ron-forwarded", "2")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            return sent;
        }
        assert_eq!(r.status(), 200);
    }
    max
}

#[tokio::test]
async fn only_a_node_certificate_makes_a_request_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut section = pki.section(1).unwrap();
    section.client_auth = tls::ClientAuth::Optional;
    let n = Node::start(config(
        Some(section),
        &[("rate_per_peer_per_sec", "1"), ("rate_burst", "20")],
    ))
    .await
    .unwrap();
    let url = format!("https://{}/v1/status", n.api_addr);
    // A client certificate (issued by the client CA) with the forwarding header is charged like
    // any client: the header is dropped on arrival.
    let client = https(&pki, true);
    let sent = relayed_until_busy(&client, &url, 200).await;
    assert!(
        sent <= 21,
        "a client certificate with x-ron-forwarded escaped the rate limit ({sent} answered)"
    );
    // A node's certificate (issued by the cluster CA) relays for its own clients, which were
    // charged where they connected: not charged here.
    let (cert, key) = &pki.nodes[0];
    let node_client = test_support::https::client(
        &pki.ca_cert,
        Some((cert.as_path(), key.as_path())),
        None,
        Duration::from_secs(5),
        Alpn::H2Http1,
    );
    assert_eq!(relayed_until_busy(&node_client, &url, 100).await, 100);
    // Without the header the node's address is charged like anyone's (the bucket refills at one
    // token a second, so a few requests drain it again).
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            node_client
                .get(&url)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    n.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let n = Node::start(config(
        None,
        &[
            ("connections_max", "8"),
            ("header_read_timeout_ms", "10000"),
        ],
    ))
    .await
    .unwrap();
    let rejected = node::metrics::connection_rejected_count();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(&n.api_addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(&n.api_addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection over the cap was left open");
    assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
    assert!(node::metrics::connection_rejected_count() > rejected);
    // Freeing a slot lets a new client in.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(format!("http://{}/v1/status", n.api_addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Connections that never sent a request do not hold up shutdown.
    let t = Instant::now();
    n.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        t.elapsed()
    );
    drop(held);
}

#[tokio::test]
async fn a_request_slower_than_the_deadline_gets_408_timeout() {
    let n = Node::start(config(
        None,
        &[("write_timeout_ms", "100"), ("request_timeout_ms", "300")],
    ))
    .await
    .unwrap();
    let mut s = TcpStream::connect(&n.api_addr).await.unwrap();
    // Headers complete, body promised but never finished.
    s.write_all(
        b"POST /v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n[",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("no answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..read]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"timeout\""), "{text}");
    assert!(t.elapsed() < Duration::from_secs(2));
    n.shutdown().await;
}

#[tokio::test]
async fn client_auth_required_refuses_clients_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut section = pki.section(1).unwrap();
    section.client_auth = tls::ClientAuth::Required;
    let n = Node::start(config(Some(section), &[])).await.unwrap();
    let ca = std::fs::read(&pki.ca_cert).unwrap();
    assert!(!tls_exchange(&n.api_addr, tls::client_config(&ca, None).unwrap()).await);
    let (cert, key) = pem_identity(&pki.client.0, &pki.client.1);
    let admin = tls::client_config(&ca, Some((&cert, &key))).unwrap();
    assert!(tls_exchange(&n.api_addr, admin).await);
    let r = https(&pki, true)
        .get(format!("https://{}/v1/status", n.api_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    n.shutdown().await;
}

#[tokio::test]
async fn handlers_see_the_peer_address_and_the_verified_client_certificate() {
    use axum::Extension;
    use node::serve::{PeerIdentity, ServeOptions};
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let material = tls::load(&pki.section(1).unwrap()).unwrap();
    let app = axum::Router::new().route(
        "/who",
        axum::routing::get(|Extension(p): Extension<PeerIdentity>| async move {
            format!(
                "{} {}",
                p.host(),
                p.client_cert.as_deref().unwrap_or("none")
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServeOptions::from_limits(
        &node::config::LimitsSection::default(),
        Some(material.api_server.clone()),
        true,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = node::serve::spawn(listener, app, options, stopped);
    let who = |identity| {
        let client = https(&pki, identity);
        async move {
            client
                .get(format!("https://{addr}/who"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let anonymous = who(false).await;
    assert_eq!(anonymous, "127.0.0.1 none");
    let named = who(true).await;
    let cert = rustls_pki_types::CertificateDer::from_pem_file(&pki.client.0).unwrap();
    assert_eq!(named, format!("127.0.0.1 {}", tls::fingerprint(&cert)));
    let _ = stop.send(true);
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .expect("serve loop stops")
        .unwrap();
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    use node::serve::ServeOptions;
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options =
        ServeOptions::from_limits(&node::config::LimitsSection::default(), None, false);
    options.http2_idle = Duration::from_millis(300);
    options.request_timeout = Duration::from_millis(300);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let _server = node::serve::spawn(listener, app, options, stopped);
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf))
        .await
        .expect("the idle HTTP/2 connection stayed open")
        .unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
}

/// An HTTP/2 connection whose answer is still being sent is not idle: a slow answer (a backup,
/// an event stream) outlasting the idle limit arrives whole.
#[tokio::test]
async fn an_http2_connection_answering_a_long_request_is_not_idle() {
    use node::serve::ServeOptions;
    let slow = || async {
        let chunks = futures_util::stream::unfold(0u8, |i| async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            Some((
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'x'; 10])),
                i + 1,
            ))
        });
        axum::body::Body::from_stream(chunks)
    };
    let app = axum::Router::new().route("/slow", axum::routing::get(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options =
        ServeOptions::from_limits(&node::config::LimitsSection::default(), None, false);
    options.http2_idle = Duration::from_millis(200);
    options.request_timeout = Duration::from_millis(200);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let _server = node::serve::spawn(listener, app, options, stopped);
    node::security::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let body = http
        .get(format!("http://{addr}/slow"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .expect("the whole answer, not a connection closed mid-way");
    assert_eq!(body.len(), 50);
}
