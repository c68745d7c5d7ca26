//! Where the running tests' package is on disk.

use std::path::PathBuf;

/// The directory of the package whose tests are running: `CARGO_MANIFEST_DIR` as Cargo sets it
/// when it runs them, else `compiled` (the caller's `env!("CARGO_MANIFEST_DIR")`). Read at run
/// time because a shared target directory can hand a checkout a test binary another checkout of
/// the same tree compiled (Cargo's fingerprints do not depend on the checkout's path): its
/// compile-time path would name the other checkout's files, or none.
pub fn package_dir(compiled: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(compiled))
}

/// The workspace root: the parent of the running tests' package (see [`package_dir`]).
pub fn workspace_root(compiled: &str) -> PathBuf {
    let package = package_dir(compiled);
    package.parent().map(PathBuf::from).unwrap_or(package)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_time_directory_wins_and_holds_this_package() {
        // Under `cargo test` the variable is set, to this package.
        let dir = package_dir("/nonexistent/compiled/path");
        assert!(dir.join("src/paths.rs").is_file(), "{}", dir.display());
        assert!(workspace_root("/nonexistent").join("Cargo.toml").is_file());
    }
}
