//! What every `ronctl` command shares: the global options and the client they describe (seeds,
//! retry budget, TLS files, the capability), the failure type and the exit code each failure
//! ends with, and the output helpers (JSON, aligned tables, progress on stderr).

use clap::Args;
use ledger::TransferRead;
use ron_ledger_client::{
    Capability, Client, ClientConfig, ClientTls, Consistency, Error, EventOutcome,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use zeroize::Zeroizing;

// The options every command takes (all global); flattened into the command line.
#[derive(Args)]
pub(crate) struct Options {
    /// Node API addresses to start from (comma-separated).
    #[arg(
        long,
        env = "RONCTL_SEEDS",
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
        global = true
    )]
    seeds: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Read this node's applied state instead of a linearizable read.
    #[arg(long, global = true)]
    stale: bool,
    /// Give up on an unreachable cluster after this many seconds (retries included).
    #[arg(long, value_name = "SECS", default_value_t = 15, global = true)]
    retry_for: u64,
    /// File holding the capability sent with every request (writes and admin operations need
    /// one). The token can also come from the RONCTL_TOKEN environment variable.
    #[arg(long, env = "RONCTL_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    /// The cluster CA (PEM): talk HTTPS to the nodes, trusting only this CA.
    #[arg(long, env = "RONCTL_CA", value_name = "FILE", global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key and --ca.
    #[arg(long, env = "RONCTL_CERT", value_name = "FILE", global = true)]
    cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --cert and --ca.
    #[arg(long, env = "RONCTL_KEY", value_name = "FILE", global = true)]
    key: Option<PathBuf>,
}

impl Options {
    /// The first of `--seeds`: the node a command that must talk to one node asks.
    pub(crate) fn first_seed(&self) -> &str {
        bare_addr(self.seeds.split(',').next().unwrap_or_default())
    }

    /// `--retry-for`: how long to keep trying an unreachable cluster.
    pub(crate) fn retry_for(&self) -> Duration {
        Duration::from_secs(self.retry_for.max(1))
    }

    /// The client these options describe.
    pub(crate) fn connect(&self) -> Result<Client, Fail> {
        Ok(Client::new(self.config()?)?)
    }

    /// The SDK settings these options describe.
    pub(crate) fn config(&self) -> Result<ClientConfig, Fail> {
        let seeds: Vec<String> = self
            .seeds
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let mut config = ClientConfig::new(seeds);
        config.tls = match (&self.ca, &self.cert, &self.key) {
            (None, None, None) => None,
            (Some(ca), None, None) => {
                Some(ClientTls::from_files(ca, None).map_err(Error::Invalid)?)
            }
            (Some(ca), Some(cert), Some(key)) => Some(
                ClientTls::from_files(ca, Some((cert.as_path(), key.as_path())))
                    .map_err(Error::Invalid)?,
            ),
            _ => {
                return Err(Fail::Usage(
                    "--cert and --key go together, and both need --ca".into(),
                ))
            }
        };
        config.retry_total = Duration::from_secs(self.retry_for.max(1));
        config.request_timeout = config.request_timeout.min(config.retry_total);
        config.capability = match (&self.token_file, std::env::var("RONCTL_TOKEN")) {
            (Some(path), _) => Some(Capability::new(read_token(path)?.as_str())),
            (None, Ok(token)) if !token.trim().is_empty() => Some(Capability::new(token)),
            _ => None,
        };
        Ok(config)
    }

    /// The read consistency asked for.
    pub(crate) fn consistency(&self) -> Consistency {
        if self.stale {
            Consistency::Stale
        } else {
            Consistency::Linearizable
        }
    }
}

/// Token text from a file, or stdin for `-`.
pub(crate) fn read_token(path: &Path) -> Result<Zeroizing<String>, Fail> {
    let mut text = Zeroizing::new(String::new());
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Fail::Usage(format!("read token from stdin: {e}")))?;
    } else {
        let read = std::fs::read_to_string(path)
            .map_err(|e| Fail::Usage(format!("read token {}: {e}", path.display())))?;
        text = Zeroizing::new(read);
    }
    ron_ledger_client::caps::trim_in_place(&mut text);
    Ok(text)
}

/// Why a command failed; [`Fail::exit`] reports it and picks the exit code.
pub(crate) enum Fail {
    Usage(String),
    Client(Error),
    NotAllOk,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Client(e)
    }
}

impl Fail {
    /// Say why on stderr; the exit code the crate documentation lists for it.
    pub(crate) fn exit(self) -> ExitCode {
        match self {
            Fail::NotAllOk => ExitCode::from(1),
            Fail::Usage(m) => {
                eprintln!("ronctl: {m}");
                ExitCode::from(2)
            }
            Fail::Client(e @ Error::Rejected { .. }) => {
                eprintln!("ronctl: the server rejected the request: {e}");
                ExitCode::from(3)
            }
            Fail::Client(Error::Invalid(m)) => {
                eprintln!("ronctl: {m}");
                ExitCode::from(2)
            }
            Fail::Client(e @ Error::Verification(_)) => {
                eprintln!("ronctl: {e}");
                ExitCode::from(1)
            }
            Fail::Client(e) => {
                let e = e.to_string();
                eprintln!("ronctl: cluster unavailable: {e}{}", tls_hint(&e));
                ExitCode::from(4)
            }
        }
    }
}

/// A hint for a node that did not answer over plain HTTP: it may serve HTTPS only.
pub(crate) fn tls_hint(error: &str) -> &'static str {
    if error.contains("http://") {
        " (if the nodes serve HTTPS, pass --ca with the cluster CA, and --cert/--key for mutual TLS)"
    } else {
        ""
    }
}

/// The 404 the server would give for a missing `kind` (`account`, `transfer`) `id`.
pub(crate) fn not_found(kind: &str, id: u128) -> Fail {
    Fail::Client(Error::Rejected {
        status: 404,
        reason: format!("{kind}_not_found"),
        message: format!("no {kind} {id}"),
    })
}

/// No node answered after `attempts` tries.
pub(crate) fn no_node_answered(attempts: u32) -> Fail {
    Fail::Client(Error::Unavailable {
        attempts,
        last: "no node answered".into(),
    })
}

/// Flag names separated by `sep`, as bits; an unknown name is a usage error listing the known ones.
pub(crate) fn parse_flags(text: &str, names: &[(&str, u16)], sep: char) -> Result<u16, Fail> {
    let mut bits = 0;
    for name in text.split(sep).map(str::trim).filter(|s| !s.is_empty()) {
        let bit = names
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                Fail::Usage(format!(
                    "unknown flag {name:?}; known: {}",
                    names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ))
            })?;
        bits |= bit;
    }
    Ok(bits)
}

/// Write `bytes` to `path`; a failure names the file.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Fail> {
    std::fs::write(path, bytes).map_err(|e| Fail::Usage(format!("{}: {e}", path.display())))
}

/// Writing to stdout failed: a closed pipe ends ronctl quietly with 141 (128 + SIGPIPE, what a
/// tool killed by the signal reports: `set -o pipefail` still sees that the output was cut, and
/// a result such as a failed `verify` is never reported as success), anything else with exit 4.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    eprintln!("ronctl: writing to stdout: {e}");
    std::process::exit(4)
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) {
    out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Print rows as an aligned table.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out!(
        "{}",
        line(headers.iter().map(|h| h.to_uppercase()).collect())
    );
    for r in rows {
        out!("{}", line(r.clone()));
    }
}

/// A table cell for an optional number: `-` when absent.
pub(crate) fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

/// The columns of [`transfer_row`].
pub(crate) const TRANSFER_HEADERS: [&str; 7] = [
    "timestamp",
    "id",
    "debit",
    "credit",
    "amount",
    "flags",
    "state",
];

/// A transfer as a table row.
pub(crate) fn transfer_row(read: &TransferRead) -> Vec<String> {
    let t = &read.transfer;
    vec![
        t.timestamp.to_string(),
        t.id.to_string(),
        t.debit_account_id.to_string(),
        t.credit_account_id.to_string(),
        t.amount.to_string(),
        serde_json::to_string(&t.flags).unwrap_or_default(),
        serde_json::to_value(read.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    ]
}

fn outcome_rows<R: std::fmt::Display + Copy>(results: &[EventOutcome<R>]) -> Vec<Vec<String>> {
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                i.to_string(),
                r.result.to_string(),
                opt(r.timestamp),
                opt(r.leaf),
            ]
        })
        .collect()
}

/// Print a write's outcomes; [`Fail::NotAllOk`] unless every one is `ok`.
pub(crate) fn report<R: std::fmt::Display + Copy + serde::Serialize>(
    json: bool,
    r: &[EventOutcome<R>],
    ok: impl Fn(&EventOutcome<R>) -> bool,
) -> Result<(), Fail> {
    if json {
        let v: Vec<serde_json::Value> = r
            .iter()
            .enumerate()
            .map(|(i, x)| {
                serde_json::json!({"index": i, "result": x.result.to_string(),
            "timestamp": x.timestamp.map(|t| t.to_string()), "leaf": x.leaf.map(|t| t.to_string())})
            })
            .collect();
        print_json(&v);
    } else {
        table(&["index", "result", "timestamp", "leaf"], &outcome_rows(r));
    }
    if r.iter().all(ok) {
        Ok(())
    } else {
        Err(Fail::NotAllOk)
    }
}

/// A progress bar on stderr, redrawn in place.
pub(crate) fn progress(done: u64, total: u64) {
    let width = 30u64;
    let filled = (done * width).checked_div(total).unwrap_or(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    eprint!("\r[{bar}] {done}/{total}");
    let _ = std::io::stderr().flush();
}

/// `host:port` of an address given as `host:port`, `https://host:port/` or `http://host:port`
/// (the forms `--seeds` takes), for the commands that call one node by its address. The SDK
/// normalises its seeds the same way; a per-node call would otherwise ask for
/// `https://https://…`.
pub(crate) fn bare_addr(addr: &str) -> &str {
    let addr = addr.trim();
    addr.strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr)
        .trim_end_matches('/')
}

#[cfg(test)]
mod addr_tests {
    use super::bare_addr;

    #[test]
    fn addresses_lose_their_scheme_and_trailing_slash() {
        for given in [
            "127.0.0.1:7001",
            " https://127.0.0.1:7001/",
            "http://127.0.0.1:7001",
        ] {
            assert_eq!(bare_addr(given), "127.0.0.1:7001", "{given:?}");
        }
    }
}
