//! The container image and the Compose cluster, for real: `deploy/docker/build-image.sh` builds
//! `ron-ledger:dev` from this build's binaries, `deploy/compose/docker-compose.yml` brings up
//! three nodes (PKI and initialisation by its one-shot services), `ronctl` on the host writes
//! through each node's published port, the leader's container is killed while writes go on and
//! is started again, and then every node holds the same root and every acknowledged transfer;
//! Prometheus on the host scrapes all three with the alert rules loaded, and every container's
//! health check passes.
//! Everything the test created (containers, volumes, network) is removed whatever the outcome.
//!
//! Needs a running Docker engine and Debian's `docker-compose` (scripts/test.sh installs and
//! starts them).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use test_support::cluster::{ronctl_binary, SERIAL};
use test_support::wait::poll;

fn repo() -> PathBuf {
    test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    out
}

fn check(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One Compose project: `docker-compose -p NAME -f deploy/compose/docker-compose.yml ...`;
/// dropping it takes everything down, volumes included.
struct Project {
    name: String,
}

impl Project {
    fn compose(&self) -> Command {
        let mut c = Command::new("docker-compose");
        // The file's seccomp profile path is relative to the repository root.
        c.current_dir(repo())
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(repo().join("deploy/compose/docker-compose.yml"));
        c
    }

    fn container(&self, service: &str) -> String {
        let id = check(self.compose().args(["ps", "-q", service]));
        let id = id.trim().to_string();
        assert!(!id.is_empty(), "no container for {service}");
        id
    }

    /// The content of `/pki/NAME` in the project's PKI volume.
    fn pki_file(&self, name: &str) -> Vec<u8> {
        let out = run(self
            .compose()
            .args([
                "run",
                "--rm",
                "-T",
                "--no-deps",
                "--entrypoint",
                "cat",
                "pki",
            ])
            .arg(format!("/pki/{name}")));
        assert!(out.status.success(), "reading {name}: {out:?}");
        out.stdout
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self
            .compose()
            .args(["down", "--volumes", "--remove-orphans", "--timeout", "5"])
            .output();
    }
}

const PORTS: [u16; 3] = [17001, 17002, 17003];

/// A process killed when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run `ronctl` against the nodes on `ports` with the writer token.
fn ronctl(dir: &Path, ports: &[u16], args: &[&str]) -> Output {
    let seeds: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    run(Command::new(ronctl_binary())
        .arg("--seeds")
        .arg(seeds.join(","))
        .arg("--ca")
        .arg(dir.join("ca.pem"))
        .arg("--cert")
        .arg(dir.join("client.pem"))
        .arg("--key")
        .arg(dir.join("client.key"))
        .arg("--token-file")
        .arg(dir.join("writer.token"))
        .args(["--retry-for", "20"])
        .args(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compose_cluster_survives_its_leaders_container_being_killed() {
    let _serial = SERIAL.lock().await;
    let info = run(Command::new("docker").arg("info"));
    assert!(
        info.status.success(),
        "no Docker engine: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    // The image from the binaries this test run uses.
    let bin_dir = test_support::cluster::binary()
        .parent()
        .expect("binary directory")
        .to_path_buf();
    check(
        Command::new("bash")
            .arg(repo().join("deploy/docker/build-image.sh"))
            .arg(bin_dir),
    );

    let project = Project {
        name: format!("ronledgertest{}", std::process::id()),
    };
    let started = Instant::now();
    check(project.compose().args(["up", "-d"]));
    let init = project.container("init");
    let code = check(Command::new("docker").args(["wait", &init]));
    let logs = run(Command::new("docker").args(["logs", &init]));
    assert_eq!(
        code.trim(),
        "0",
        "init failed: {}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    println!("cluster initialised {:?} after up", started.elapsed());

    // The PKI as the one-shot service made it, and a token minted on the host from its ring.
    let dir = tempfile::tempdir().unwrap();
    for name in ["ca.pem", "client.pem", "client.key", "caps.keys"] {
        test_support::files::write_private(
            &dir.path().join(name),
            &String::from_utf8(project.pki_file(name)).unwrap(),
        );
    }
    check(
        Command::new(ronctl_binary())
            .args(["cap", "mint", "--keys"])
            .arg(dir.path().join("caps.keys"))
            .args([
                "--cluster-id",
                "ron-ledger",
                "--ops",
                "accounts.create,transfers.create",
                "--ttl",
                "1h",
                "--out",
            ])
            .arg(dir.path().join("writer.token")),
    );
    let http = test_support::cluster::https_client(dir.path(), None);
    let status = |port: u16| {
        let http = http.clone();
        async move {
            let r = http
                .get(format!("https://127.0.0.1:{port}/v1/status"))
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()
        }
    };

    // Accounts, then one transfer through each node.
    for id in ["1", "2"] {
        let out = ronctl(
            dir.path(),
            &PORTS,
            &[
                "account", "create", "--id", id, "--ledger", "1", "--code", "1",
            ],
        );
        assert!(out.status.success(), "account {id}: {out:?}");
    }
    let mut acked: BTreeSet<u128> = BTreeSet::new();
    let mut next = 100u128;
    let mut transfer = |ports: &[u16]| {
        next += 1;
        let id = next.to_string();
        let out = ronctl(
            dir.path(),
            ports,
            &[
                "transfer", "create", "--id", &id, "--debit", "1", "--credit", "2", "--amount",
                "1", "--ledger", "1", "--code", "1",
            ],
        );
        if out.status.success() {
            acked.insert(next);
        }
        out
    };
    for port in PORTS {
        let out = transfer(&[port]);
        assert!(out.status.success(), "through {port}: {out:?}");
    }

    // Kill the leader's container; keep writing through the other two.
    let leader = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let s = status(PORTS[0]);
        async move {
            s.await
                .and_then(|s| s["leader"].as_u64())
                .ok_or("no leader known")
        }
    })
    .await;
    let service = format!("node{leader}");
    check(Command::new("docker").args(["kill", &project.container(&service)]));
    let others: Vec<u16> = (1..=3u64)
        .filter(|id| *id != leader)
        .map(|id| PORTS[(id - 1) as usize])
        .collect();
    let killed_at = Instant::now();
    for _ in 0..10 {
        transfer(&others);
    }
    assert!(
        acked.len() >= 3 + 10,
        "the two remaining nodes did not acknowledge every write: {acked:?}"
    );
    println!(
        "10 transfers through the two others in {:?} after the kill",
        killed_at.elapsed()
    );

    // Start it again: it catches up, and every node holds the same root.
    check(project.compose().args(["start", &service]));
    let root = poll(Duration::from_secs(60), Duration::from_millis(200), || {
        let all = [status(PORTS[0]), status(PORTS[1]), status(PORTS[2])];
        async move {
            let mut seen = BTreeSet::new();
            for s in all {
                let s = s.await.ok_or("a node does not answer")?;
                seen.insert((
                    s["applied_index"].as_u64().unwrap_or(0),
                    s["root"].as_str().unwrap_or("").to_string(),
                ));
            }
            match seen.len() {
                1 => Ok(seen.into_iter().next().unwrap()),
                _ => Err("nodes not converged"),
            }
        }
    })
    .await;
    println!("converged at {root:?}");

    // Every acknowledged transfer, on every node, exactly once (a query of the ledger's
    // transfers, read from each node's own state).
    for port in PORTS {
        let r: Value = http
            .get(format!(
                "https://127.0.0.1:{port}/v1/transfers?limit=1000&consistency=stale"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<u128> = r["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().parse().unwrap())
            .collect();
        let set: BTreeSet<u128> = ids.iter().copied().collect();
        assert_eq!(set.len(), ids.len(), "a transfer twice on {port}");
        assert!(
            acked.is_subset(&set),
            "{port} lacks acknowledged transfers: {:?}",
            acked.difference(&set).collect::<Vec<_>>()
        );
    }

    // Prometheus on the host scrapes the three published ports (with the cluster's CA) and
    // loads the alert rules; all three targets are up and exactly one node leads.
    let prom_port = test_support::ports::free_port();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n\
             - job_name: ron-ledger\n  scheme: https\n  tls_config: {{ca_file: {ca}}}\n\
             \x20 static_configs: [{{targets: ['127.0.0.1:17001', '127.0.0.1:17002', '127.0.0.1:17003']}}]\n",
            rules = repo().join("deploy/prometheus/rules.yml").display(),
            ca = dir.path().join("ca.pem").display(),
        ),
    )
    .unwrap();
    let _prometheus = Child(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package)"),
    );
    let plain = reqwest::Client::new();
    let prom = |path: String| {
        let plain = plain.clone();
        async move {
            let r = plain
                .get(format!("http://127.0.0.1:{prom_port}{path}"))
                .send()
                .await
                .ok()?;
            r.json::<Value>().await.ok()
        }
    };
    poll(Duration::from_secs(60), Duration::from_millis(500), || {
        let targets = prom("/api/v1/targets".into());
        let leaders = prom("/api/v1/query?query=sum(raft_is_leader)".into());
        async move {
            let t = targets.await.ok_or("prometheus not answering")?;
            let up = t["data"]["activeTargets"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|t| t["health"] == "up").count());
            if up != 3 {
                return Err(format!("{up} of 3 targets up: {t}"));
            }
            let l = leaders.await.ok_or("query failed")?;
            match l["data"]["result"][0]["value"][1].as_str() {
                Some("1") => Ok(()),
                other => Err(format!("sum(raft_is_leader) = {other:?}")),
            }
        }
    })
    .await;
    let rules = prom("/api/v1/rules".into()).await.expect("rules");
    assert_eq!(
        rules["data"]["groups"].as_array().map(Vec::len),
        Some(4),
        "the alert rules are loaded: {rules}"
    );

    // The image's health check passes on every node.
    for id in 1..=3 {
        let c = project.container(&format!("node{id}"));
        let health = poll(Duration::from_secs(60), Duration::from_millis(500), || {
            let c = c.clone();
            async move {
                let out = run(Command::new("docker").args([
                    "inspect",
                    "--format",
                    "{{.State.Health.Status}}",
                    &c,
                ]));
                let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if s == "healthy" {
                    Ok(s)
                } else {
                    Err(format!("node{id} is {s}"))
                }
            }
        })
        .await;
        assert_eq!(health, "healthy");
    }
}
