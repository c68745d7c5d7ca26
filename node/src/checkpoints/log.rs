//! The retained checkpoints on disk (`data_dir/checkpoints.jsonl`).

use crate::config::Config;
use ledger::checkpoint::SignedCheckpoint;
use std::collections::VecDeque;
use std::path::PathBuf;

/// Where this node keeps its retained checkpoints across restarts (none in amnesia mode).
pub fn log_path(config: &Config) -> Option<PathBuf> {
    (!config.amnesia)
        .then(|| {
            config
                .data_dir
                .as_ref()
                .map(|d| d.join("checkpoints.jsonl"))
        })
        .flatten()
}

/// The retained checkpoints on disk: one JSON checkpoint per line, oldest first, appended and
/// synced as each is signed, and rewritten (atomically) to the newest `retention` when it has
/// grown to twice that.
pub(super) struct CheckpointLog {
    pub(super) path: PathBuf,
    lines: usize,
}

impl CheckpointLog {
    /// Read the file (missing: none yet). A line that does not parse — a write torn by a crash
    /// — is skipped with a warning; the next compaction drops it.
    pub(super) fn open(
        path: PathBuf,
        retention: usize,
    ) -> anyhow::Result<(Self, VecDeque<SignedCheckpoint>)> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("checkpoint log {}: {e}", path.display()),
        };
        let mut newest_first = VecDeque::new();
        let mut lines = 0;
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            match serde_json::from_str::<SignedCheckpoint>(line) {
                Ok(cp) => newest_first.push_front(cp),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    line = n + 1,
                    error = %e,
                    "skipping an unreadable line of the checkpoint log"
                ),
            }
        }
        newest_first.truncate(retention);
        if !newest_first.is_empty() {
            tracing::info!(
                checkpoints = newest_first.len(),
                path = %path.display(),
                "checkpoints signed before the restart are served again"
            );
        }
        Ok((Self { path, lines }, newest_first))
    }

    /// Append `cp` durably; compact first when the file holds twice `retained.len()` lines.
    pub(super) fn append(
        &mut self,
        cp: &SignedCheckpoint,
        retained: &VecDeque<SignedCheckpoint>,
        retention: usize,
    ) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if self.lines >= retention.saturating_mul(2) {
            let mut text = String::new();
            for c in retained.iter().rev() {
                text.push_str(&serde_json::to_string(c).map_err(std::io::Error::other)?);
                text.push('\n');
            }
            let tmp = self.path.with_extension("jsonl.tmp");
            let _ = std::fs::remove_file(&tmp);
            crate::security::files::write_new_private(&tmp, text.as_bytes())?;
            std::fs::rename(&tmp, &self.path)?;
            self.lines = retained.len();
            return Ok(());
        }
        let mut line = serde_json::to_string(cp).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        self.lines += 1;
        Ok(())
    }
}
