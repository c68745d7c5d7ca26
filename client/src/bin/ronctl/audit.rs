//! `ronctl export`, `verify`, `keys`: export bundles and the checkpoint keys to check them
//! with. `verify` is offline: it reads files and calls `ledger::verify_bundle`.

use crate::common::{print_json, write_file, Fail};
use ron_ledger_client::checkpoints::{CheckpointKeys, KeysFile};
use ron_ledger_client::{Client, Error};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn read_file(path: &PathBuf) -> Result<String, Fail> {
    std::fs::read_to_string(path).map_err(|e| Fail::Usage(format!("{}: {e}", path.display())))
}

pub(crate) async fn export(
    client: &Client,
    from: u64,
    to: u64,
    file: &Path,
    pretty: bool,
    json: bool,
) -> Result<(), Fail> {
    let bundle = client.export(from, to).await?;
    let bytes = if pretty {
        serde_json::to_vec_pretty(&bundle)
    } else {
        serde_json::to_vec(&bundle)
    }
    .map_err(|e| Fail::Usage(e.to_string()))?;
    write_file(file, &bytes)?;
    let cp = &bundle.checkpoint;
    if json {
        print_json(&serde_json::json!({"file": file.display().to_string(),
            "from": bundle.from.to_string(), "to": bundle.to.to_string(),
            "events": bundle.events.len(), "checkpoint": cp}));
    } else {
        out!(
            "wrote {} events [{}, {}) against checkpoint size {} root {} signed by {} to {} (not verified; run ronctl verify)",
            bundle.events.len(),
            bundle.from,
            bundle.to,
            cp.tree_size,
            cp.root,
            cp.kid,
            file.display()
        );
    }
    Ok(())
}

/// `ronctl verify`: the verdict goes to stdout; a failure is exit 1, unreadable input exit 2.
pub(crate) fn verify(
    file: &PathBuf,
    keys: &PathBuf,
    cluster_id: Option<&str>,
    json: bool,
) -> Result<(), Fail> {
    let keys = KeysFile::parse(&read_file(keys)?)
        .map_err(|e| Fail::Usage(format!("{}: {e}", keys.display())))?;
    let bundle: ledger::ExportBundle = serde_json::from_str(&read_file(file)?)
        .map_err(|e| Fail::Usage(format!("{}: not an export bundle: {e}", file.display())))?;
    let expected = cluster_id.or(keys.cluster_id.as_deref());
    let verdict = ledger::verify_bundle(&bundle, &keys.keys)
        .map_err(|e| e.to_string())
        .and_then(|report| match expected {
            Some(c) if c != report.cluster_id => Err(format!(
                "checkpoint is for cluster {:?}, expected {c:?}",
                report.cluster_id
            )),
            _ => Ok(report),
        });
    match verdict {
        Ok(report) => {
            if json {
                print_json(
                    &serde_json::json!({"ok": true, "from": bundle.from.to_string(),
                    "to": bundle.to.to_string(), "report": report}),
                );
            } else {
                out!(
                    "OK: {} events [{}, {}) verified against checkpoint size {} root {} signed by {}",
                    report.events, bundle.from, bundle.to, report.tree_size, report.root, report.kid
                );
                out!(
                    "    {} accounts, {} transfers, {} expiries, {} rejected; cluster {}, time {}",
                    report.accounts,
                    report.transfers,
                    report.expiries,
                    report.rejected,
                    report.cluster_id,
                    report.timestamp
                );
            }
            Ok(())
        }
        Err(why) => {
            if json {
                print_json(&serde_json::json!({"ok": false, "error": why}));
            } else {
                out!("FAILED: {why}");
            }
            Err(Fail::NotAllOk)
        }
    }
}

/// `ronctl keys`: every member's keys, or exit 4 naming the members that did not answer.
pub(crate) async fn keys(client: &Client, out: &Path, json: bool) -> Result<(), Fail> {
    let statuses = client.cluster_status().await;
    let members: Vec<String> = statuses
        .iter()
        .find_map(|(_, s)| s.as_ref().ok())
        .map(|s| s.members.iter().map(|m| m.api_addr.clone()).collect())
        .ok_or_else(|| {
            Fail::Client(Error::Unavailable {
                attempts: statuses.len() as u32,
                last: "no node answered".into(),
            })
        })?;
    if members.is_empty() {
        return Err(Fail::Usage("the cluster has no members yet".into()));
    }
    let mut merged: Option<CheckpointKeys> = None;
    let mut missing = Vec::new();
    for addr in &members {
        let answer = match client.checkpoint_keys_of(addr).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("ronctl: {addr}: {e}");
                missing.push(addr.clone());
                continue;
            }
        };
        let all = merged.get_or_insert_with(|| CheckpointKeys {
            cluster_id: answer.cluster_id.clone(),
            keys: BTreeMap::new(),
            history: Vec::new(),
        });
        if all.cluster_id != answer.cluster_id {
            return Err(Fail::Usage(format!(
                "{addr} is in cluster {:?}, other members in {:?}",
                answer.cluster_id, all.cluster_id
            )));
        }
        for (kid, key) in answer.keys {
            match all.keys.get(&kid) {
                Some(known) if *known != key => {
                    return Err(Fail::Usage(format!(
                        "{addr} has another key under kid {kid:?}"
                    )))
                }
                _ => {
                    all.keys.insert(kid, key);
                }
            }
        }
        // Each node's history names only its own keys, so the merge is a union; two members
        // telling different ranges for one key is refused, not resolved by who answered first.
        for record in answer.history {
            match all.history.iter().find(|r| r.kid == record.kid) {
                Some(known) if *known != record => {
                    return Err(Fail::Usage(format!(
                        "{addr} tells another history for key {:?} than an earlier member",
                        record.kid
                    )))
                }
                Some(_) => {}
                None => all.history.push(record),
            }
        }
    }
    let merged = match merged {
        Some(m) if missing.is_empty() => m,
        _ => {
            return Err(Fail::Client(Error::Unavailable {
                attempts: members.len() as u32,
                last: format!("no checkpoint keys from {}", missing.join(", ")),
            }))
        }
    };
    KeysFile::parse(&serde_json::to_string(&merged).unwrap_or_default())
        .map_err(|e| Fail::Usage(format!("a member served a bad key: {e}")))?;
    let text = serde_json::to_vec_pretty(&merged).map_err(|e| Fail::Usage(e.to_string()))?;
    write_file(out, &text)?;
    if json {
        print_json(&merged);
    } else {
        out!(
            "wrote {} keys ({}) of cluster {} to {}",
            merged.keys.len(),
            merged.keys.keys().cloned().collect::<Vec<_>>().join(", "),
            merged.cluster_id,
            out.display()
        );
    }
    Ok(())
}
