//! `ronctl cap …`: mint, attenuate, inspect and revoke capability tokens.

use crate::common::{print_json, read_token, table, Fail};
use clap::Subcommand;
use ledger::capability::{Caveat, Op};
use ron_ledger_client::caps;
use ron_ledger_client::Client;
use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum CapCmd {
    /// Mint a token from a root-key file (operators only: whoever holds the key file can mint).
    /// Prints the token on stdout (or writes it to --out, mode 0600).
    ///
    /// Example: ronctl cap mint --keys caps.keys --cluster-id prod --ttl 7d --ops transfers.create --debit 1,2 --max-amount 10000 --out app.token
    Mint {
        /// The capability key ring (JSON, mode 0600).
        #[arg(long)]
        keys: PathBuf,
        /// Mint with this KID (default: the newest key not marked retired).
        #[arg(long)]
        kid: Option<String>,
        /// The cluster the token is for (its audience caveat).
        #[arg(long)]
        cluster_id: String,
        /// Lifetime: 3600, 90s, 15m, 12h, 7d (at most the cluster's cap, 30d by default).
        #[arg(long, default_value = "1d")]
        ttl: String,
        #[command(flatten)]
        caveats: CaveatArgs,
        /// The person or system the token is for: its id then names this holder, and dual
        /// control (reversals need `transfers.reverse` tokens of two holders) tells holders apart
        /// by it. Attenuation keeps it.
        #[arg(long)]
        holder: Option<String>,
        /// Write the token to this file (created 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Narrow a token by adding caveats, offline (no key needed). TOKEN is a file, or - for stdin.
    ///
    /// Example: ronctl cap attenuate app.token --max-amount 100 --ttl 1h --out narrow.token
    Attenuate {
        token: PathBuf,
        /// Also expire after this long from now.
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        caveats: CaveatArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a token's KID, id, issue time and caveats (never its MAC). TOKEN is a file or -.
    ///
    /// Example: ronctl cap inspect app.token
    Inspect { token: PathBuf },
    /// Put a token on the cluster's deny-list (admin: needs --token-file with an admin
    /// capability, and --cert/--key over TLS). Give the token file, or --id and --kid.
    ///
    /// Example: ronctl --token-file admin.token cap revoke app.token --reason "laptop lost"
    Revoke {
        /// The token to revoke (file or -).
        token: Option<PathBuf>,
        /// Its id (32 hex digits), instead of the token.
        #[arg(long, requires = "kid")]
        id: Option<String>,
        /// Its KID, with --id.
        #[arg(long)]
        kid: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List the cluster's deny-list (admin).
    ///
    /// Example: ronctl --token-file admin.token cap revoked
    Revoked {
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// Caveats given as flags.
#[derive(clap::Args)]
pub struct CaveatArgs {
    /// Allowed operations: accounts.create, transfers.create, transfers.reverse, admin
    /// (comma-separated).
    #[arg(long)]
    ops: Option<String>,
    /// Accounts that may be debited (comma-separated ids).
    #[arg(long)]
    debit: Option<String>,
    /// The only ledger allowed.
    #[arg(long)]
    ledger: Option<u32>,
    /// Largest amount per transfer.
    #[arg(long)]
    max_amount: Option<u128>,
    /// Not valid before this Unix time (seconds).
    #[arg(long)]
    not_before: Option<u64>,
    /// Any caveat as KEY=VALUE (expires=, not_before=, audience=, ops=, debit=, ledger=,
    /// max_amount=); repeatable.
    #[arg(long = "caveat", value_name = "KEY=VALUE")]
    extra: Vec<String>,
}

impl CaveatArgs {
    fn caveats(&self) -> Result<Vec<Caveat>, Fail> {
        let mut out = Vec::new();
        if let Some(ops) = &self.ops {
            out.push(Caveat::Ops(parse_set::<Op>(ops, "--ops")?));
        }
        if let Some(debit) = &self.debit {
            out.push(Caveat::DebitAccounts(parse_set::<u128>(debit, "--debit")?));
        }
        if let Some(l) = self.ledger {
            out.push(Caveat::Ledger(l));
        }
        if let Some(m) = self.max_amount {
            out.push(Caveat::MaxAmount(m));
        }
        if let Some(nb) = self.not_before {
            out.push(Caveat::NotBefore(nb));
        }
        for text in &self.extra {
            out.push(
                text.parse::<Caveat>()
                    .map_err(|e| Fail::Usage(format!("--caveat {text:?}: {e}")))?,
            );
        }
        Ok(out)
    }
}

/// A comma-separated set, naming `flag` in the error.
fn parse_set<T>(text: &str, flag: &str) -> Result<BTreeSet<T>, Fail>
where
    T: std::str::FromStr + Ord,
    T::Err: std::fmt::Display,
{
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<T>())
        .collect::<Result<BTreeSet<T>, _>>()
        .map_err(|e| Fail::Usage(format!("{flag}: {e}")))
}

/// Seconds in a duration like `90`, `90s`, `15m`, `12h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<u64, Fail> {
    let text = text.trim();
    let (num, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: u64 = num.parse().map_err(|_| {
        Fail::Usage(format!(
            "invalid duration {text:?} (e.g. 3600, 15m, 12h, 7d)"
        ))
    })?;
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => {
            return Err(Fail::Usage(format!(
                "invalid duration unit in {text:?} (s, m, h or d)"
            )))
        }
    };
    n.checked_mul(mult)
        .filter(|s| *s > 0)
        .ok_or_else(|| Fail::Usage(format!("invalid duration {text:?}")))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn emit(token: &str, out: Option<&Path>) -> Result<(), Fail> {
    match out {
        None => {
            out!("{token}");
            Ok(())
        }
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Fail::Usage(format!("create {}: {e}", path.display())))?;
            f.write_all(token.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .map_err(|e| Fail::Usage(format!("write {}: {e}", path.display())))
        }
    }
}

fn tool(e: caps::CapToolError) -> Fail {
    Fail::Usage(e.to_string())
}

/// Run the offline subcommands; `Ok(None)` means "needs the cluster" (revoke, revoked).
pub fn run_offline(cmd: &CapCmd, json: bool) -> Result<Option<()>, Fail> {
    match cmd {
        CapCmd::Mint {
            keys,
            kid,
            cluster_id,
            ttl,
            caveats,
            holder,
            out,
        } => {
            let ring = caps::load_key_ring(keys).map_err(tool)?;
            let token = caps::mint(
                &ring,
                kid.as_deref(),
                cluster_id,
                now_secs(),
                parse_ttl(ttl)?,
                caveats.caveats()?,
                holder.as_deref(),
            )
            .map_err(tool)?;
            eprintln!("minted token {} with KID {}", token.id_hex(), token.kid);
            emit(&Zeroizing::new(token.encode()), out.as_deref())?;
            Ok(Some(()))
        }
        CapCmd::Attenuate {
            token,
            ttl,
            caveats,
            out,
        } => {
            let text = read_token(token)?;
            let mut extra = caveats.caveats()?;
            if let Some(ttl) = ttl {
                extra.push(Caveat::ExpiresAt(
                    now_secs().saturating_add(parse_ttl(ttl)?),
                ));
            }
            if extra.is_empty() {
                return Err(Fail::Usage("attenuate needs at least one caveat".into()));
            }
            let narrowed = caps::attenuate(&text, extra).map_err(tool)?;
            emit(&Zeroizing::new(narrowed.encode()), out.as_deref())?;
            Ok(Some(()))
        }
        CapCmd::Inspect { token } => {
            let text = read_token(token)?;
            let info = caps::inspect(&text).map_err(tool)?;
            if json {
                print_json(&info);
            } else {
                let value = serde_json::to_value(&info).unwrap_or_default();
                let rows: Vec<Vec<String>> = value
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    serde_json::Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                };
                                vec![k.clone(), v]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["field", "value"], &rows);
            }
            Ok(Some(()))
        }
        CapCmd::Revoke { .. } | CapCmd::Revoked { .. } => Ok(None),
    }
}

/// Run the subcommands that talk to the cluster.
pub async fn run_online(cmd: CapCmd, client: &Client, json: bool) -> Result<(), Fail> {
    match cmd {
        CapCmd::Revoke {
            token,
            id,
            kid,
            reason,
        } => {
            let (id, kid) = match (token, id, kid) {
                (Some(path), None, _) => {
                    let text = read_token(&path)?;
                    let info = caps::inspect(&text).map_err(tool)?;
                    (info.id, info.kid)
                }
                (None, Some(id), Some(kid)) => (id, kid),
                _ => {
                    return Err(Fail::Usage(
                        "give the token (file or -), or --id with --kid".into(),
                    ))
                }
            };
            client.revoke(&id, &kid, &reason).await?;
            if json {
                print_json(&serde_json::json!({"revoked": id, "kid": kid}));
            } else {
                out!("revoked {id} (KID {kid})");
            }
            Ok(())
        }
        CapCmd::Revoked { limit } => {
            let list = client.revocations(None, limit).await?;
            if json {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|r| {
                        vec![
                            r.token_id.clone(),
                            r.kid.clone(),
                            r.revoked_at.clone(),
                            r.log_index.clone(),
                            r.reason.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["token_id", "kid", "revoked_at", "log_index", "reason"],
                    &rows,
                );
            }
            Ok(())
        }
        other => run_offline(&other, json).map(|_| ()),
    }
}
