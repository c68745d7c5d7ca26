//! Taking a backup of one node (`POST /v1/admin/backup`, admin) into a backup directory: the
//! node answers one manifest line (JSON) then the snapshot stream; the stream is written to
//! `state.rlsnap` in bounded chunks while its size and BLAKE3 are computed, both must match what
//! the manifest says, and only then is `manifest.json` written, every file and the directory
//! fsynced, and the directory renamed from `.<name>.partial` to its name. A directory that
//! exists is never written into.
//!
//! ```no_run
//! # async fn f() -> Result<(), ron_ledger_client::Error> {
//! let config = ron_ledger_client::ClientConfig::new(["127.0.0.1:7001"]);
//! let taken = ron_ledger_client::backup::take_backup(&config, "127.0.0.1:7001", "backup-1".as_ref()).await?;
//! println!("{} bytes at tree size {}", taken.stream_bytes, taken.manifest["tree_size"]);
//! # Ok(()) }
//! ```

use crate::{ClientConfig, Error};
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The manifest's file name (as `raft_store::backup::MANIFEST_FILE`).
pub const MANIFEST_FILE: &str = "manifest.json";
/// The stream's file name (as `raft_store::backup::STREAM_FILE`).
pub const STREAM_FILE: &str = "state.rlsnap";
/// Longest manifest line accepted (bytes).
const MANIFEST_LINE_BYTES_MAX: usize = 64 << 10;
/// How long the node may stay silent (it writes the whole stream before the first byte).
pub const BACKUP_IDLE_TIMEOUT: Duration = Duration::from_secs(1800);

/// A backup written to disk.
#[derive(Debug)]
pub struct BackupTaken {
    /// Where it is.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Value,
    /// Bytes of the stream.
    pub stream_bytes: u64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Invalid(format!("{what} {}: {e}", path.display()))
}

/// A directory removed when this is dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Back up the node at `addr` into the new directory `out` (see the module docs).
pub async fn take_backup(
    config: &ClientConfig,
    addr: &str,
    out: &Path,
) -> Result<BackupTaken, Error> {
    if out.exists() {
        return Err(Error::Invalid(format!(
            "{} exists; a backup goes into a new directory",
            out.display()
        )));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} has no directory name", out.display())))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = parent.join(format!(".{}.partial", name.to_string_lossy()));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| io("remove", &partial, e))?;
    }
    // Removes the partial directory whichever way this ends before the rename: an error, or
    // the caller dropping this future (`ronctl backup` interrupted by Ctrl-C).
    let cleanup = RemoveOnDrop(Some(partial.clone()));
    let (manifest, stream_bytes) = download(config, addr, &partial).await?;
    fs::rename(&partial, out).map_err(|e| io("rename to", out, e))?;
    cleanup.disarm();
    fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync", &parent, e))?;
    Ok(BackupTaken {
        dir: out.to_path_buf(),
        manifest,
        stream_bytes,
    })
}

/// Receive the backup into `dir` (created 0700); returns the manifest and the stream's size.
async fn download(config: &ClientConfig, addr: &str, dir: &Path) -> Result<(Value, u64), Error> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| io("create", dir, e))?;
    crate::install_crypto_provider();
    let builder = reqwest::Client::builder()
        .connect_timeout(config.request_timeout)
        .read_timeout(BACKUP_IDLE_TIMEOUT);
    let (builder, scheme) = match &config.tls {
        Some(tls) => (
            builder.tls_backend_preconfigured(tls.rustls_config().map_err(Error::Invalid)?),
            "https",
        ),
        None => (builder, "http"),
    };
    let http = builder.build().map_err(|e| Error::Invalid(e.to_string()))?;
    let mut req = http.post(format!("{scheme}://{addr}/v1/admin/backup"));
    if let Some(cap) = &config.capability {
        req = req.header("authorization", cap.header());
    }
    let mut resp = req.send().await.map_err(|e| Error::Unavailable {
        attempts: 1,
        last: format!("{addr}: {e}"),
    })?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        return Err(Error::Rejected {
            status,
            reason: body["error"]["reason"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            message: body["error"]["message"].as_str().unwrap_or("").to_string(),
        });
    }
    let lost = |e: reqwest::Error| Error::Unavailable {
        attempts: 1,
        last: format!("{addr}: the backup stream broke off: {e}"),
    };
    let stream_path = dir.join(STREAM_FILE);
    let mut file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&stream_path)
        .map_err(|e| io("create", &stream_path, e))?;
    let mut line: Vec<u8> = Vec::new();
    let mut manifest: Option<Value> = None;
    let mut hasher = blake3::Hasher::new();
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(lost)? {
        let mut rest = &chunk[..];
        if manifest.is_none() {
            match rest.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    line.extend_from_slice(&rest[..end]);
                    rest = &rest[end + 1..];
                    manifest = Some(serde_json::from_slice(&line).map_err(|e| {
                        Error::Protocol(format!("the backup's manifest line: {e}"))
                    })?);
                }
                None => {
                    line.extend_from_slice(rest);
                    rest = &[];
                }
            }
            if line.len() > MANIFEST_LINE_BYTES_MAX {
                return Err(Error::Protocol(
                    "the backup's manifest line is too long".into(),
                ));
            }
        }
        hasher.update(rest);
        bytes += rest.len() as u64;
        file.write_all(rest)
            .map_err(|e| io("write", &stream_path, e))?;
    }
    let manifest =
        manifest.ok_or_else(|| Error::Protocol("the answer has no manifest line".into()))?;
    let listed = &manifest["files"][0];
    let checksum = hasher.finalize().to_hex().to_string();
    if listed["name"].as_str() != Some(STREAM_FILE)
        || listed["bytes"].as_u64() != Some(bytes)
        || listed["blake3"].as_str() != Some(checksum.as_str())
    {
        return Err(Error::Protocol(format!(
            "the stream received ({bytes} bytes, BLAKE3 {checksum}) is not the one the manifest \
             lists ({listed})"
        )));
    }
    file.sync_all().map_err(|e| io("fsync", &stream_path, e))?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let mut text =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Protocol(e.to_string()))?;
    text.push(b'\n');
    let mut mf = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&manifest_path)
        .map_err(|e| io("create", &manifest_path, e))?;
    mf.write_all(&text)
        .and_then(|()| mf.sync_all())
        .map_err(|e| io("write", &manifest_path, e))?;
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("fsync", dir, e))?;
    Ok((manifest, bytes))
}
