//! `POST /v1/admin/backup`: an online backup of this node (not proxied: the node asked is the
//! one backed up). The state backend writes the snapshot stream of one consistent view to an
//! unlinked temporary file while apply carries on (`StateBackend::export_backup`); the answer is
//! the manifest (`raft_store::backup::Manifest`, one JSON line) followed by the stream's bytes.
//! `ronctl backup` writes both into a backup directory after checking the stream's size and
//! checksum against the manifest. The admin gate in [`super::middleware`] guards the route.

use crate::error::ApiError;
use crate::http::respond::err;
use crate::node::Node;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use raft_store::backup::Manifest;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Sets its flag when dropped: the backup handler holds one while the export runs.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Content type of a backup answer: a manifest line, then the snapshot stream.
pub const BACKUP_CONTENT_TYPE: &str = "application/x-ron-backup";
/// Bytes read from the stream file per body chunk.
const CHUNK_BYTES: usize = 256 << 10;

/// The backup route.
pub fn routes() -> Router<Arc<Node>> {
    Router::new().route("/v1/admin/backup", post(admin_backup))
}

async fn admin_backup(State(node): State<Arc<Node>>) -> Response {
    let slot = match node.heavy_reads.backup() {
        Ok(s) => s,
        Err(e) => return err(&node, e),
    };
    let state = node.state.clone();
    let started = std::time::Instant::now();
    // The slot goes with the export: a blocking task is not cancelled when the caller goes
    // away, so the slot must not be freed before the export (a full copy on disk) has ended.
    // A caller that goes away drops this handler, and with it `cancel_on_drop`, which stops
    // the export at its next record: the slot is free again within moments, not after a full
    // copy nobody will read.
    let cancel = Arc::new(AtomicBool::new(false));
    // (Dropped at the end of a finished export too, when the flag no longer matters.)
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let exported = tokio::task::spawn_blocking(move || (state.export_backup(&cancel), slot)).await;
    let (summary, file, slot) = match exported {
        Ok((Ok((summary, file)), slot)) => (summary, file, slot),
        Ok((Err(e), _)) => {
            return err(
                &node,
                ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "backup_failed",
                    format!("backup not taken: {e}"),
                ),
            )
        }
        Err(e) => return err(&node, ApiError::internal(e.to_string())),
    };
    let release = format!("{} ({})", crate::version::RELEASE, crate::version::COMMIT);
    let manifest = Manifest::new(&summary, &node.config.cluster_id, node.id, &release);
    let mut line = match serde_json::to_vec(&manifest) {
        Ok(l) => l,
        Err(e) => return err(&node, ApiError::internal(e.to_string())),
    };
    line.push(b'\n');
    tracing::info!(
        last_log_id = ?manifest.last_log_id,
        tree_size = manifest.tree_size,
        stream_bytes = summary.stream_bytes,
        took_ms = started.elapsed().as_millis() as u64,
        "backup stream written; sending it"
    );
    let file = tokio::fs::File::from_std(file);
    let head =
        futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(line)) });
    // The stream holds the backup's slot until it has been sent (or the caller went away).
    let rest = futures_util::stream::unfold((file, slot), |(mut file, slot)| async move {
        let mut buf = vec![0u8; CHUNK_BYTES];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, slot)))
            }
            Err(e) => Some((Err(e), (file, slot))),
        }
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(head, rest));
    ([(CONTENT_TYPE, BACKUP_CONTENT_TYPE)], body).into_response()
}
