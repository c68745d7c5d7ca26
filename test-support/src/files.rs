//! Files with exact permission bits: private (0600) key and token files, and deliberately loose
//! ones for the tests that check they are refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `text` to `path` (created or truncated) and leave it with permission bits `mode`. A new
/// file is created with `mode` (never looser while it is written); an existing one is set to it.
pub fn write_mode(path: &Path, text: &str, mode: u32) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(text.as_bytes()).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Write `text` to `path` with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    write_mode(path, text, 0o600);
}
