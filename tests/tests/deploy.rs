//! The deployment files against the node they deploy: the Prometheus alert rules validate and
//! pass their unit tests (`promtool`, from Debian's `prometheus` package), and every metric name
//! they use is one a live node of a 3-node cluster exports on `/metrics` — so a renamed metric
//! cannot leave an alert that silently never fires.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_support::cluster::{Cluster, SERIAL};
use test_support::events::transfer_json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Run `promtool` with `args` in `deploy/prometheus`, and fail the test with its output unless
/// it succeeds.
fn promtool(args: &[&str]) {
    let dir = repo().join("deploy/prometheus");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not runnable ({e}): install Debian's prometheus package (scripts/install-deps.sh does)")
        });
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metric names Prometheus makes itself, not the node.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

/// PromQL words that are not metric names: binary operators, modifiers and the aggregation
/// operators (which may be followed by `by (...)` before their parenthesis).
const KEYWORDS: [&str; 22] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
];

/// The metric names a PromQL expression selects: identifiers outside label matchers (`{...}`),
/// ranges (`[...]`), strings and grouping lists, that are not functions (followed by `(`),
/// keywords or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        if c == '{' || c == '[' || c == '"' {
            let close = match c {
                '{' => '}',
                '[' => ']',
                _ => '"',
            };
            i += 1;
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && i + 1 < chars.len() && chars[i + 1].is_ascii_digit())
        {
            while i < chars.len() && (is_ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let call = j < chars.len() && chars[j] == '(';
            if matches!(
                word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) && call
            {
                // A grouping list: label names, not metrics.
                while j < chars.len() && chars[j] != ')' {
                    j += 1;
                }
                i = j + 1;
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The `expr:` of every rule in a rules file.
fn rule_exprs(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|e| e.trim().to_string())
        .collect()
}

/// The series names `/metrics` text offers: every `# TYPE`d family, with a histogram's
/// `_bucket`, `_sum` and `_count`.
fn exported(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            out.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    out
}

#[test]
fn the_metric_name_extractor_finds_metrics_and_only_metrics() {
    let got = metric_names(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(a_seconds_bucket{x="y z"}[5m]))) > 0.15 and b < 0.2 * c and on (job) predict_linear(d[6h], 4 * 3600) < 1e9"#,
    );
    let want: BTreeSet<String> = ["a_seconds_bucket", "b", "c", "d"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_alert_rules_validate_and_pass_their_unit_tests() {
    promtool(&["check", "rules", "rules.yml"]);
    promtool(&["test", "rules", "rules.test.yml"]);
    promtool(&["check", "config", "--syntax-only", "prometheus.yml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alert_rules_use_is_exported_by_a_live_node() {
    let _serial = SERIAL.lock().await;
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yml")).unwrap();
    let exprs = rule_exprs(&rules);
    assert!(exprs.len() >= 15, "rules.yml lost its rules: {exprs:?}");
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();

    let mut c = Cluster::new(3, "");
    c.start_three_with_accounts(2).await;
    c.write_until_acked(
        "/v1/transfers",
        &serde_json::Value::Array(vec![transfer_json(1, 1, 2, 1)]),
        &[1, 2, 3],
        Duration::from_secs(20),
    )
    .await;
    // The leader exports the per-follower replication lag; every node the rest.
    let leader = c.leader(&[1, 2, 3]).await;
    let text = c
        .http
        .get(c.url(leader, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let offered = exported(&text);
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !offered.contains(*n) && !PROMETHEUS_OWN.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "rules.yml uses metrics the node does not export: {missing:?}\nexported: {offered:?}"
    );
}

/// The unit file, with `ExecStart`'s program replaced by `program` (systemd checks it exists).
fn unit_with_program(program: &Path) -> String {
    std::fs::read_to_string(repo().join("deploy/systemd/ron-ledger.service"))
        .unwrap()
        .replace("/usr/bin/ron-ledger", &program.display().to_string())
}

/// The value of `key=` in the unit text.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit sets no {key}"))
        .trim()
        .to_string()
}

#[test]
fn the_systemd_unit_verifies_and_its_command_line_is_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ron-ledger.service");
    let unit = unit_with_program(&test_support::cluster::binary());
    std::fs::write(&path, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian's systemd package)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("ron-ledger.service"),
        "systemd-analyze verify: {stderr}"
    );
    // ExecStart's arguments parse: with a missing config file the node names the file (an
    // argument it does not know would print the usage instead).
    let exec = unit_value(&unit, "ExecStart");
    let mut words = exec.split_whitespace();
    let program = words.next().unwrap();
    let args: Vec<String> = words
        .map(|w| {
            w.replace(
                "/etc/ron-ledger/node.toml",
                &dir.path().join("absent.toml").display().to_string(),
            )
        })
        .collect();
    let out = Command::new(program).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Usage:"), "usage error: {stderr}");
    assert!(!out.status.success());
    assert!(stderr.contains("absent.toml"), "{stderr}");
}

/// Send `signal` (`HUP`, `TERM`) to node `id` with kill(1).
fn signal(c: &Cluster, id: u64, signal: &str) {
    let pid = c.node(id).child.as_ref().expect("running").id();
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reloads_keys_on_sighup_and_stops_cleanly_on_sigterm_within_the_units_timeout() {
    let _serial = SERIAL.lock().await;
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/ron-ledger.service")).unwrap();
    assert_eq!(unit_value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value(&unit, "KillSignal"), "SIGTERM");
    let stop_secs: u64 = unit_value(&unit, "TimeoutStopSec")
        .trim_end_matches('s')
        .parse()
        .unwrap();

    let mut c = Cluster::new(3, "");
    c.start_three_with_accounts(2).await;

    // A key added to the key file is unknown until the nodes get SIGHUP.
    let keys = c.pki.join("caps.keys");
    let mut ring = test_support::tokens::read_ring(&keys);
    ring.generate_entry("rotated", [7u8; 32]).unwrap();
    let token = test_support::tokens::mint(
        ring.get("rotated").unwrap(),
        test_support::tokens::unique_id(),
        test_support::clock::now_secs(),
        3_600,
        test_support::cluster::CLUSTER_ID,
        vec![],
    )
    .encode();
    test_support::files::write_private(&keys, &ring.to_json());
    let http = test_support::cluster::https_client(&c.pki, Some(&token));
    let write = |id: u128| {
        let http = http.clone();
        let url = c.url(1, "/v1/transfers");
        async move {
            let r = http
                .post(url)
                .json(&serde_json::Value::Array(vec![transfer_json(id, 1, 2, 1)]))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let (status, body) = write(1).await;
    assert_eq!(status, 401, "before SIGHUP the new key is unknown: {body}");
    for id in 1..=3 {
        signal(&c, id, "HUP");
    }
    test_support::wait::poll(Duration::from_secs(20), Duration::from_millis(100), || {
        let w = write(2);
        async move {
            match w.await {
                (200, _) => Ok(()),
                _ => Err("not reloaded yet"),
            }
        }
    })
    .await;
    for id in 1..=3 {
        assert_eq!(c.try_exit(id), None, "node {id} survives SIGHUP");
    }

    // SIGTERM: the node exits 0 well within TimeoutStopSec, and the other two go on.
    let leader = c.leader(&[1, 2, 3]).await;
    signal(&c, leader, "TERM");
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(code) = c.try_exit(leader) {
            break code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(stop_secs),
            "node {leader} still running {stop_secs} s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, 0, "a clean stop exits 0");
    println!(
        "node {leader} stopped {:?} after SIGTERM",
        started.elapsed()
    );
    let rest: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    c.write_until_acked(
        "/v1/transfers",
        &serde_json::Value::Array(vec![transfer_json(3, 1, 2, 1)]),
        &rest,
        Duration::from_secs(30),
    )
    .await;
}
