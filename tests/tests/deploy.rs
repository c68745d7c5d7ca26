//! The deployment files against the node they deploy: the Prometheus alert rules validate and
//! pass their unit tests (`promtool`, from Debian's `prometheus` package), and every metric name
//! they and the Grafana dashboard use is one a live node of a 3-node cluster exports on
//! `/metrics` — so a renamed metric cannot leave an alert that silently never fires; the systemd
//! unit verifies and its signals do what it expects; the Kubernetes manifests validate against
//! the schemas and name only ports, paths and variables the node has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_support::cluster::{Cluster, SERIAL};
use test_support::events::transfer_json;

fn repo() -> PathBuf {
    test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
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

/// Every `expr` string anywhere in a Grafana dashboard.
fn dashboard_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
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
async fn every_metric_the_alert_rules_and_the_dashboard_use_is_exported_by_a_live_node() {
    let _serial = SERIAL.lock().await;
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yml")).unwrap();
    let exprs = rule_exprs(&rules);
    assert!(exprs.len() >= 15, "rules.yml lost its rules: {exprs:?}");
    let mut used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/ron-ledger.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    dashboard_exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "the dashboard lost its queries");
    used.extend(queries.iter().flat_map(|e| metric_names(e)));

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

    // /v1/status says what the node runs, the same as `ron-ledger --version`.
    let status = c.status(leader).await.expect("status");
    let version = Command::new(test_support::cluster::binary())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let v = &status["version"];
    for (field, shown) in [
        (
            "release",
            format!("ron-ledger {}", v["release"].as_str().unwrap()),
        ),
        (
            "commit",
            format!("commit {}", v["commit"].as_str().unwrap()),
        ),
        (
            "storage_format",
            format!("storage format {}", v["storage_format"]),
        ),
        (
            "snapshot_format",
            format!("snapshot format {}", v["snapshot_format"]),
        ),
        (
            "record_codec",
            format!("record codec {}", v["record_codec"]),
        ),
    ] {
        assert!(
            version.contains(&shown),
            "--version ({version}) lacks the status' {field}: {v}"
        );
    }
    assert_eq!(v["release"], env!("CARGO_PKG_VERSION"));
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !offered.contains(*n) && !PROMETHEUS_OWN.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the rules or the dashboard use metrics the node does not export: {missing:?}\nexported: {offered:?}"
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
        c.signal(id, "HUP");
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
    c.signal(leader, "TERM");
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

#[test]
fn the_container_seccomp_profile_is_the_nodes_list_without_exec() {
    let read = |path: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(repo().join(path)).unwrap()).unwrap()
    };
    let node = read("deploy/seccomp.json");
    let container = read("deploy/docker/seccomp.json");
    let names = |profile: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| {
                rule["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| (n.as_str().unwrap().to_string(), rule["args"].clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let want: Vec<_> = names(&node)
        .into_iter()
        .filter(|(n, _)| n != "execve" && n != "execveat")
        .collect();
    assert_eq!(names(&container), want);
    assert_eq!(container["defaultAction"], node["defaultAction"]);
    assert_eq!(container["architectures"], node["architectures"]);
    assert!(names(&node).iter().any(|(n, _)| n == "execve"));
}

/// `kubectl kustomize DIR`'s output.
fn kustomize(dir: &str) -> String {
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(repo().join(dir))
        .output()
        .expect("kubectl (Debian's kubernetes-client)");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every `RON_LEDGER_*` name in `text`.
fn env_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("RON_LEDGER_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        // `RON_LEDGER_*` in prose names the family, not a variable.
        if end > "RON_LEDGER_".len() {
            out.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_kubernetes_manifests_validate_and_name_only_what_the_node_reads() {
    let overlays = [
        ("deploy/kubernetes/base", 3),
        ("deploy/kubernetes/overlays/five", 5),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut names = BTreeSet::new();
    for (overlay, nodes) in overlays {
        let manifests = kustomize(overlay);
        let file = dir.path().join(format!("{nodes}.yaml"));
        std::fs::write(&file, &manifests).unwrap();
        let out = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(&file)
            .output()
            .expect("kubernetes-validate (PyPI)");
        assert!(
            out.status.success(),
            "{overlay} does not validate:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A quorum survives disruptions; every member is initialised.
        assert!(
            manifests.contains(&format!("replicas: {nodes}")),
            "{overlay}"
        );
        let quorum = nodes / 2 + 1;
        assert!(
            manifests.contains(&format!("minAvailable: {quorum}")),
            "{overlay}: the PodDisruptionBudget must keep {quorum}"
        );
        for id in 1..=nodes {
            let member = format!(
                "{id}=ron-ledger-{0}.ron-ledger-peers:7001,ron-ledger-{0}.ron-ledger-peers:7101",
                id - 1
            );
            assert!(
                manifests.contains(&member),
                "{overlay}: init lacks {member}"
            );
        }
        // The probes ask what the node serves, on the ports it listens on.
        for expected in [
            "path: /readyz",
            "path: /healthz",
            "containerPort: 7001",
            "containerPort: 7101",
            "value: 0.0.0.0:7001",
            "value: 0.0.0.0:7101",
            "readOnlyRootFilesystem: true",
            "runAsNonRoot: true",
            "publishNotReadyAddresses: true",
        ] {
            assert!(manifests.contains(expected), "{overlay} lacks {expected}");
        }
        names.extend(env_names(&manifests));
    }
    for file in [
        "deploy/compose/docker-compose.yml",
        "deploy/docker/Dockerfile",
    ] {
        names.extend(env_names(
            &std::fs::read_to_string(repo().join(file)).unwrap(),
        ));
    }
    assert!(names.len() >= 10, "{names:?}");

    // Every variable the deployment files set is one the node's configuration reads: with all
    // of them set, `probe` gets past the configuration (an unknown RON_LEDGER_ name stops it
    // with exit 2, naming the variable) and fails only at reaching the node.
    let mut probe = Command::new(test_support::cluster::binary());
    probe.args(["probe", "--timeout-ms", "200"]);
    probe.env_clear();
    for name in &names {
        let value = match name.as_str() {
            "RON_LEDGER_NODE_ID" => "1",
            "RON_LEDGER_SECCOMP" | "RON_LEDGER_TLS__ENABLED" => "true",
            "RON_LEDGER_API_ADDR" => "127.0.0.1:9",
            "RON_LEDGER_PEER_ADDR" => "127.0.0.1:10",
            "RON_LEDGER_LOG__FORMAT" => "json",
            "RON_LEDGER_DATA_DIR" => "/nonexistent/data",
            "RON_LEDGER_CLUSTER_ID" => "ron-ledger",
            "RON_LEDGER_ADVERTISE_API_ADDR" => "node1:7001",
            "RON_LEDGER_ADVERTISE_PEER_ADDR" => "node1:7101",
            other => {
                if other.ends_with("_FILE") {
                    "/nonexistent/file"
                } else {
                    panic!("no test value for {other}: add it here")
                }
            }
        };
        probe.env(name, value);
    }
    let out = probe.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the deployment files' variables must load as configuration: {stderr}"
    );
    assert!(stderr.contains("tls.ca_file"), "{stderr}");
}
