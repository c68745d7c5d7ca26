//! The client API on a Unix socket: an allowed uid gets HTTP answers, any other uid is
//! disconnected before HTTP and counted, and binding never deletes a file that is not a socket.

use node::config::{Config, UdsSection};
use node::Node;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use test_support::ports::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn config(socket: &Path, allowed_uids: Vec<u32>) -> Config {
    let mut c = node::config::load(
        None,
        Vec::new(),
        &[
            ("node_id".into(), "1".into()),
            ("amnesia".into(), "true".into()),
            ("auth.enabled".into(), "false".into()),
            ("tls.mtls_required".into(), "false".into()),
            ("api_addr".into(), format!("127.0.0.1:{}", free_port())),
            ("peer_addr".into(), format!("127.0.0.1:{}", free_port())),
        ],
    )
    .unwrap();
    c.uds = UdsSection {
        path: Some(socket.to_path_buf()),
        allowed_uids,
        ..UdsSection::default()
    };
    c
}

/// One HTTP/1.1 GET over the socket; everything the server sent before closing.
async fn get(socket: &Path, path: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(socket).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // A refused peer may already be disconnected when the request is written.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .map_err(|_| std::io::Error::other("no answer and no close within 10 s"))??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn an_allowed_uid_gets_answers_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    // A socket file left behind by an earlier run.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(std::fs::symlink_metadata(&socket)
        .unwrap()
        .file_type()
        .is_socket());

    let running = Node::start(config(&socket, vec![my_uid()])).await.unwrap();
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let answer = get(&socket, "/v1/status").await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    running.shutdown().await;
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}

#[tokio::test]
async fn another_uid_is_disconnected_without_an_answer_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let other = my_uid().wrapping_add(4242);
    let running = Node::start(config(&socket, vec![other])).await.unwrap();
    let before = node::metrics::uds_denied_count();
    // Either a clean EOF or a reset: what matters is that no HTTP came back.
    let answer = get(&socket, "/v1/status").await.unwrap_or_default();
    assert!(answer.is_empty(), "a refused peer got {answer:?}");
    assert!(node::metrics::uds_denied_count() > before);
    // The listener keeps accepting (and refusing) after a refusal.
    let answer = get(&socket, "/healthz").await.unwrap_or_default();
    assert!(answer.is_empty(), "{answer:?}");
    assert!(node::metrics::uds_denied_count() >= before + 2);
    running.shutdown().await;
}

#[tokio::test]
async fn a_regular_file_at_the_socket_path_is_kept_and_start_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("precious.db");
    std::fs::write(&socket, b"do not delete").unwrap();
    let err = match Node::start(config(&socket, vec![my_uid()])).await {
        Ok(_) => panic!("started over a regular file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains(&socket.display().to_string()), "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&socket).unwrap(), b"do not delete");
}

#[test]
fn an_empty_allow_list_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("n.toml");
    std::fs::write(
        &file,
        "node_id = 1\namnesia = true\napi_addr = \"127.0.0.1:1\"\npeer_addr = \"127.0.0.1:2\"\n[auth]\nenabled = false\n[tls]\nmtls_required = false\n[uds]\npath = \"/tmp/x.sock\"\n",
    )
    .unwrap();
    let err = node::config::load(Some(&file), Vec::new(), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("uds.allowed_uids"), "{err}");
}
