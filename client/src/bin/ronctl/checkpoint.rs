//! `ronctl checkpoint`: show the latest signed checkpoint, or (`--now`) have a node sign one.

use crate::common::{print_json, table, Fail};
use ron_ledger_client::Client;

pub(crate) async fn run(client: &Client, now: bool, json: bool) -> Result<(), Fail> {
    let cp = if now {
        client.make_checkpoint().await?
    } else {
        client.latest_checkpoint().await?
    };
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
    Ok(())
}
