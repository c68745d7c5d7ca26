//! `ronctl cluster …`: every node's view, and membership changes (add a learner, promote it,
//! remove a member).

use crate::common::{no_node_answered, opt, print_json, table, Fail, Options};
use clap::Subcommand;
use ron_ledger_client::{Client, Error, InitMember};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub(crate) enum ClusterCmd {
    /// Every node's view. Example: ronctl cluster status
    Status,
    /// Initialise a new cluster (admin), once in its life, through the first seed, which must be
    /// one of the members. A cluster already initialised is reported and left alone (exit 0), so
    /// a deployment may run this at every start.
    /// Example: ronctl --seeds node1:7001 cluster init 1=node1:7001,node1:7101 2=node2:7001,node2:7101 3=node3:7001,node3:7101
    Init {
        /// Members as ID=API_ADDR,PEER_ADDR (the addresses the nodes advertise).
        #[arg(required = true, value_name = "ID=API_ADDR,PEER_ADDR")]
        members: Vec<String>,
    },
    /// Add a non-voting member. Example: ronctl cluster add-learner 4 127.0.0.1:7004 127.0.0.1:7104
    AddLearner {
        node_id: u64,
        api_addr: String,
        peer_addr: String,
    },
    /// Make a learner a voter. Example: ronctl cluster promote 4
    Promote { node_id: u64 },
    /// Remove a member. Example: ronctl cluster remove 4
    Remove { node_id: u64 },
    /// Clear the safe mode of the node at NODE_ADDR (admin), once the cause is gone: the node
    /// re-checks what the fault touched and refuses if the check fails; then restart it.
    /// Example: ronctl cluster clear-safe-mode 127.0.0.1:7002
    ClearSafeMode {
        /// The node's API address (host:port).
        node_addr: String,
    },
}

pub(crate) async fn run(
    cmd: ClusterCmd,
    client: &Client,
    opts: &Options,
    json: bool,
) -> Result<(), Fail> {
    match cmd {
        ClusterCmd::Status => status(client, json).await,
        ClusterCmd::Init { members } => {
            init(client, opts.first_seed(), opts.retry_for(), &members).await
        }
        ClusterCmd::AddLearner {
            node_id,
            api_addr,
            peer_addr,
        } => {
            client.add_learner(node_id, &api_addr, &peer_addr).await?;
            out!("node {node_id} added as a learner");
            Ok(())
        }
        ClusterCmd::Promote { node_id } => {
            // The change itself, applied by the leader to the membership it holds: a
            // concurrent promotion or removal is never undone by a stale list.
            client.add_voters(&[node_id]).await?;
            out!("voters now {:?}", current_voters(client).await?);
            Ok(())
        }
        ClusterCmd::ClearSafeMode { node_addr } => {
            // The node reads its whole store back before it answers: on a large ledger that
            // takes minutes, so this one call waits up to CLEAR_SAFE_MODE_TIMEOUT (the node
            // does not cut it at its request deadline either).
            let mut config = opts.config()?;
            config.request_timeout = CLEAR_SAFE_MODE_TIMEOUT;
            config.retry_total = config.retry_total.max(CLEAR_SAFE_MODE_TIMEOUT);
            let patient = Client::new(config)?;
            let answer = patient
                .clear_safe_mode_of(crate::common::bare_addr(&node_addr))
                .await?;
            if json {
                print_json(&answer);
            } else {
                out!(
                    "{node_addr}: safe mode ({}) cleared after {}; restart the node to rejoin",
                    answer.reason,
                    answer.checked
                );
            }
            Ok(())
        }
        ClusterCmd::Remove { node_id } => {
            let members = current_members(client).await?;
            match members.iter().find(|m| m.id == node_id) {
                None => Err(Fail::Usage(format!("node {node_id} is not a member"))),
                Some(m) if !m.voter => {
                    client.remove_learner(node_id).await?;
                    out!("learner {node_id} removed");
                    Ok(())
                }
                Some(_) => {
                    if !members.iter().any(|m| m.voter && m.id != node_id) {
                        return Err(Fail::Usage("cannot remove the last voter".into()));
                    }
                    client.remove_voters(&[node_id]).await?;
                    out!("voters now {:?}", current_voters(client).await?);
                    Ok(())
                }
            }
        }
    }
}

/// How long `ronctl cluster clear-safe-mode` waits for the node's re-check.
const CLEAR_SAFE_MODE_TIMEOUT: Duration = Duration::from_secs(1800);

/// `ronctl cluster status`: one row per node; exit 4 when none answered.
async fn status(client: &Client, json: bool) -> Result<(), Fail> {
    let all = client.cluster_status().await;
    if json {
        let v: Vec<serde_json::Value> = all.iter().map(|(a, s)| match s {
            Ok(s) => serde_json::json!({"addr": a, "node": s.node_id, "role": s.role, "term": s.term, "leader": s.leader,
                "last_log_index": s.last_log_index, "committed_index": s.committed_index, "applied_index": s.applied_index, "root": s.root,
                "safe_mode": s.safe_mode_reason.as_deref().or(s.safe_mode.as_deref())}),
            Err(e) => serde_json::json!({"addr": a, "error": e.to_string()}),
        }).collect();
        print_json(&v);
    } else {
        let rows: Vec<Vec<String>> = all
            .iter()
            .map(|(a, s)| match s {
                Ok(s) => vec![
                    s.node_id.to_string(),
                    a.clone(),
                    s.role.clone(),
                    s.term.to_string(),
                    opt(s.last_log_index),
                    opt(s.committed_index),
                    opt(s.applied_index),
                    s.root.clone().unwrap_or_default(),
                    s.safe_mode_reason
                        .clone()
                        .or_else(|| s.safe_mode.as_ref().map(|_| "yes".into()))
                        .unwrap_or_else(|| "-".into()),
                ],
                Err(_) => vec![
                    "?".into(),
                    a.clone(),
                    "unreachable".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            })
            .collect();
        table(
            &[
                "node",
                "addr",
                "role",
                "term",
                "last_log",
                "committed",
                "applied",
                "root",
                "safe_mode",
            ],
            &rows,
        );
        // Why each unreachable node did not answer, below the table (it would stretch a column).
        for (a, s) in &all {
            if let Err(e) = s {
                let e = e.to_string();
                eprintln!("ronctl: {a}: {e}{}", crate::common::tls_hint(&e));
            }
        }
    }
    if all.iter().all(|(_, s)| s.is_err()) {
        return Err(no_node_answered(all.len() as u32));
    }
    Ok(())
}

/// The voters as the current leader sees them (a lagging follower's view could drop members).
async fn current_voters(client: &Client) -> Result<Vec<u64>, Fail> {
    Ok(current_members(client)
        .await?
        .iter()
        .filter(|m| m.voter)
        .map(|m| m.id)
        .collect())
}

/// The members as the leader's status lists them.
async fn current_members(client: &Client) -> Result<Vec<ron_ledger_client::Member>, Fail> {
    for (_, s) in client.cluster_status().await {
        if let Ok(s) = s {
            // A leader that names itself (a cut-off old leader still has role "leader" but no
            // longer vouches for itself, and may hold a stale membership).
            if s.leader == Some(s.node_id) {
                return Ok(s.members);
            }
        }
    }
    Err(no_node_answered(1))
}

/// One `ID=API_ADDR,PEER_ADDR` argument of `cluster init`.
fn member(text: &str) -> Result<InitMember, String> {
    let bad = || format!("member {text:?} is not ID=API_ADDR,PEER_ADDR");
    let (id, addrs) = text.split_once('=').ok_or_else(bad)?;
    let (api_addr, peer_addr) = addrs.split_once(',').ok_or_else(bad)?;
    let node_id: u64 = id.parse().map_err(|_| bad())?;
    if node_id == 0 || api_addr.is_empty() || peer_addr.is_empty() {
        return Err(bad());
    }
    Ok(InitMember {
        node_id,
        api_addr: api_addr.to_string(),
        peer_addr: peer_addr.to_string(),
    })
}

/// Initialise through `addr`, trying again while it cannot be reached (a deployment starts the
/// nodes and this together), for at most `retry_for`.
async fn init(
    client: &Client,
    addr: &str,
    retry_for: Duration,
    members: &[String],
) -> Result<(), Fail> {
    let members = members
        .iter()
        .map(|m| member(m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail::Usage)?;
    let deadline = Instant::now() + retry_for;
    loop {
        match client.init_cluster(addr, &members).await {
            Ok(()) => {
                out!("cluster initialised with {} members", members.len());
                return Ok(());
            }
            Err(Error::Rejected { reason, .. }) if reason == "already_initialized" => {
                out!("{addr} is already initialised; nothing done");
                return Ok(());
            }
            Err(Error::Unavailable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(INIT_RETRY_EVERY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// How often `cluster init` tries an unreachable node again.
const INIT_RETRY_EVERY: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_parse_and_malformed_ones_are_refused() {
        assert_eq!(
            member("2=node2:7001,node2:7101").unwrap(),
            InitMember {
                node_id: 2,
                api_addr: "node2:7001".into(),
                peer_addr: "node2:7101".into(),
            }
        );
        for bad in ["", "2", "2=a", "x=a,b", "0=a,b", "2=,b", "2=a,"] {
            assert!(member(bad).is_err(), "{bad:?}");
        }
    }
}
