//! Owner-only secret files (capability root keys, checkpoint signing keys, dev tokens, dev PKI
//! keys): created new with mode 0600 and fsynced, and refused on read when group or others may
//! read them. Secret text read here is wiped from memory when dropped.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The permission bits of `path` when group or others have any access to it, `None` when only
/// its owner has.
pub fn loose_mode(path: &Path) -> std::io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// Create `path`, which must not exist yet, readable only by its owner (0600); write `bytes` and
/// fsync the file.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Replace `path` atomically with `bytes`, readable only by its owner (0600): written to a
/// temporary file beside it, fsynced, renamed over it, and the directory fsynced.
pub fn replace_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    if let Err(e) = write_new_private(&tmp, bytes) {
        // Nothing half-written stays behind (a full disk leaves an empty file otherwise).
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Write `text` to a new file readable only by its owner (0600); refuses to replace a file.
pub fn write_private_file(path: &Path, text: &str) -> anyhow::Result<()> {
    write_new_private(path, text.as_bytes()).with_context(|| format!("write {}", path.display()))
}

/// Read a secret file that must be readable by its owner only (mode 0600 or stricter), naming
/// the file in every error. The text is wiped from memory when dropped.
pub fn read_private_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    let loose =
        loose_mode(path).with_context(|| format!("{what} {}: cannot read it", path.display()))?;
    if let Some(mode) = loose {
        anyhow::bail!(
            "{what} {} has mode {mode:o}: it must be readable only by the node (chmod 600)",
            path.display(),
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{what} {}: cannot read it", path.display()))?;
    Ok(Zeroizing::new(text))
}
