//! `ronctl checkpoint`: show the latest signed checkpoint, or (`--now`) have a node sign one;
//! with `--keys`, verified first (and with `--state`, against the last one accepted before);
//! with `--rotate NODE`, have that node rotate its checkpoint key.

use crate::common::{print_json, table, Fail, Options};
use ledger::checkpoint::SignedCheckpoint;
use ron_ledger_client::checkpoints::KeysFile;
use ron_ledger_client::Client;
use std::path::Path;

pub(crate) async fn run(client: &Client, now: bool, json: bool) -> Result<(), Fail> {
    let cp = if now {
        client.make_checkpoint().await?
    } else {
        client.latest_checkpoint().await?
    };
    show(&cp, json);
    Ok(())
}

/// The latest checkpoint, accepted only if a key in `keys` signed it and (with `state`) it
/// extends the checkpoint remembered there; the state file then remembers it.
pub(crate) async fn verified(
    opts: &Options,
    now: bool,
    keys: &Path,
    state: Option<&Path>,
    json: bool,
) -> Result<(), Fail> {
    let text = std::fs::read_to_string(keys)
        .map_err(|e| Fail::Usage(format!("read keys {}: {e}", keys.display())))?;
    let keys =
        KeysFile::parse(&text).map_err(|e| Fail::Usage(format!("keys {}: {e}", keys.display())))?;
    let mut config = opts.config()?.with_trusted_keys(keys.keys, keys.cluster_id);
    config.checkpoint_state = state.map(Path::to_path_buf);
    let client = Client::new(config)?;
    if now {
        client.make_checkpoint().await?;
    }
    let cp = client.latest_verified_checkpoint().await?;
    show(&cp, json);
    Ok(())
}

/// `--rotate NODE`: one request to that node; shows the retired and the new key.
pub(crate) async fn rotate(client: &Client, addr: &str, json: bool) -> Result<(), Fail> {
    let r = client.rotate_checkpoint_key_of(addr).await?;
    if json {
        print_json(&r);
    } else {
        let size = |s: Option<u64>| s.map_or("-".to_string(), |s| s.to_string());
        table(
            &["key", "kid", "first_tree_size", "last_tree_size"],
            &[
                vec![
                    "retired".into(),
                    r.retired.kid.clone(),
                    r.retired.first_tree_size.to_string(),
                    size(r.retired.last_tree_size),
                ],
                vec![
                    "current".into(),
                    r.current.kid.clone(),
                    r.current.first_tree_size.to_string(),
                    size(r.current.last_tree_size),
                ],
            ],
        );
        out!("run `ronctl keys --out FILE` so verifiers trust the new key");
    }
    Ok(())
}

fn show(cp: &SignedCheckpoint, json: bool) {
    if json {
        print_json(&cp);
    } else {
        table(
            &["cluster", "tree_size", "root", "timestamp", "kid"],
            &[vec![
                cp.cluster_id.clone(),
                cp.tree_size.to_string(),
                cp.root.to_string(),
                cp.timestamp.to_string(),
                cp.kid.clone(),
            ]],
        );
    }
}
