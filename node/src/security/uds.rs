//! The client API on a Unix domain socket, admitted by the kernel-reported peer credentials
//! (`SO_PEERCRED`): a connection whose uid is not in `[uds] allowed_uids` is closed before any
//! byte of HTTP is read or written. Local tools (sidecars, `ronctl` on the host) reach the node
//! without a TCP port and without a token that could leak.
//!
//! ```no_run
//! # async fn f() -> Result<(), node::security::uds::UdsError> {
//! let listener = node::security::uds::UdsListener::bind("/run/ron-ledger/api.sock".as_ref(), vec![0], 0o660)?;
//! // axum::serve(listener, router) ...
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};

/// Why the socket could not be bound. Every message names the path.
#[derive(Debug, thiserror::Error)]
pub enum UdsError {
    /// No uid would be admitted: refuse to bind a socket nobody may use.
    #[error("unix socket {path}: allowed_uids is empty")]
    EmptyAllowList {
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket is in the way; it is left alone.
    #[error(
        "unix socket {path}: a file that is not a socket exists there; refusing to replace it"
    )]
    NotASocket {
        /// The socket path.
        path: PathBuf,
    },
    /// The path could not be inspected, a stale socket could not be removed, the socket could not
    /// be bound, or its mode could not be set.
    #[error("unix socket {path}: cannot {action}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

/// The address type of [`UdsListener`]: the socket itself, or an admitted peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdsAddr {
    /// The listening socket's path.
    Local(PathBuf),
    /// A connected peer, as the kernel reported it.
    Peer {
        /// Effective uid of the peer.
        uid: u32,
        /// Process id of the peer, when the kernel knows it.
        pid: Option<i32>,
    },
}

impl fmt::Display for UdsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UdsAddr::Local(path) => write!(f, "unix:{}", path.display()),
            UdsAddr::Peer { uid, pid } => match pid {
                Some(pid) => write!(f, "uid={uid},pid={pid}"),
                None => write!(f, "uid={uid},pid=?"),
            },
        }
    }
}

/// A Unix socket listener that admits only peers whose uid is in an allow-list. Implements
/// [`axum::serve::Listener`]; refused connections are dropped, logged (`reason = "uds_denied"`)
/// and counted ([`crate::metrics::uds_denied`]), and accepting goes on.
#[derive(Debug)]
pub struct UdsListener {
    inner: UnixListener,
    path: PathBuf,
    allowed_uids: Vec<u32>,
    /// (device, inode) of the socket file we created, so drop removes only ours.
    identity: (u64, u64),
}

impl UdsListener {
    /// Bind `path`, replacing a stale socket (never any other kind of file), and set the socket
    /// file's permission bits to `mode`. Must run inside a tokio runtime.
    pub fn bind(path: &Path, allowed_uids: Vec<u32>, mode: u32) -> Result<Self, UdsError> {
        let io_err = |action: &'static str| {
            move |source: io::Error| UdsError::Io {
                path: path.to_path_buf(),
                action,
                source,
            }
        };
        if allowed_uids.is_empty() {
            return Err(UdsError::EmptyAllowList {
                path: path.to_path_buf(),
            });
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(io_err("remove the stale socket"))?;
            }
            Ok(_) => {
                return Err(UdsError::NotASocket {
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect the path")(e)),
        }
        let inner = UnixListener::bind(path).map_err(io_err("bind"))?;
        let meta = std::fs::symlink_metadata(path).map_err(io_err("inspect the bound socket"))?;
        let listener = Self {
            inner,
            path: path.to_path_buf(),
            allowed_uids,
            identity: (meta.dev(), meta.ino()),
        };
        // On failure `listener` drops here and removes the socket it created.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("set the socket's mode"))?;
        Ok(listener)
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a peer with these credentials may talk to the API. `Err` carries the peer as
    /// far as it is known, for the log line.
    fn admit(&self, cred: io::Result<tokio::net::unix::UCred>) -> Result<UdsAddr, String> {
        match cred {
            Ok(cred) => {
                let peer = UdsAddr::Peer {
                    uid: cred.uid(),
                    pid: cred.pid(),
                };
                if self.allowed_uids.contains(&cred.uid()) {
                    Ok(peer)
                } else {
                    Err(peer.to_string())
                }
            }
            Err(e) => Err(format!("unknown (peer_cred failed: {e})")),
        }
    }
}

impl Drop for UdsListener {
    fn drop(&mut self) {
        // Remove the socket file only if it is still the one this listener created.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if meta.file_type().is_socket() && (meta.dev(), meta.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl axum::serve::Listener for UdsListener {
    type Io = UnixStream;
    type Addr = UdsAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => match self.admit(stream.peer_cred()) {
                    Ok(peer) => return (stream, peer),
                    Err(peer) => {
                        tracing::warn!(
                            peer = %peer,
                            reason = "uds_denied",
                            socket = %self.path.display(),
                            "unix socket connection refused: uid not in uds.allowed_uids"
                        );
                        crate::metrics::uds_denied();
                        drop(stream);
                    }
                },
                Err(e) => {
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) {
                        // E.g. EMFILE: back off instead of spinning, as axum's own listeners do.
                        tracing::error!(error = %e, socket = %self.path.display(), "unix socket accept");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(UdsAddr::Local(self.path.clone()))
    }
}
