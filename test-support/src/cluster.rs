//! The multi-process harness: a cluster of real `ron-ledger` processes on loopback, started
//! from config files with TLS, mutual TLS and capabilities on, killed with SIGKILL, restarted.
//! The binaries are the ones next to the test executable (`cargo build --workspace --bins`).
//! [`Cluster::in_sites`] puts each node in a network namespace of its own instead
//! ([`crate::netns`]).

use crate::https::Alpn;
use crate::netns::{Sites, API_PORT, PEER_PORT};
use crate::wait::{poll, wait_for};
use crate::{clock, files, https, ports, tokens};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Held by every multi-process test: they share the machine's ports and cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `ron-ledger` binary next to the test executable.
pub fn binary() -> PathBuf {
    sibling("ron-ledger")
}

/// The `ronctl` binary next to `ron-ledger`.
pub fn ronctl_binary() -> PathBuf {
    sibling("ronctl")
}

/// The example program `name` in `target/debug/examples/` (`cargo build --workspace --examples`,
/// which `scripts/test.sh` runs before the tests).
pub fn example_binary(name: &str) -> PathBuf {
    sibling(&format!("examples/{name}"))
}

fn sibling(name: &str) -> PathBuf {
    // target/debug/deps/cluster-<hash> → target/debug/ron-ledger
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --workspace --bins --examples), or run scripts/test.sh",
        bin.display()
    );
    bin
}

/// One configured node: its addresses, config file, log file and (while running) its process.
pub struct Proc {
    pub api: String,
    pub peer: String,
    pub config: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

/// Nodes 1..=N of one test cluster in a temporary directory, with their PKI and admin token.
/// Dropping it kills every node still running.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Proc>,
    /// HTTPS client trusting only the cluster CA, presenting the client certificate and sending
    /// the admin capability with every request.
    pub http: reqwest::Client,
    pub extra: String,
    /// Log format and level of the nodes.
    pub log: (String, String),
    /// `ca.pem`, `node-N.pem/.key`, `client.pem/.key` and `caps.keys` (`ron-ledger certs`).
    pub pki: PathBuf,
    /// A capability for every operation, admin included (also in `token_file`, mode 0600).
    pub token: String,
    pub token_file: PathBuf,
    /// Where the nodes run: `None` on loopback at random ports, else in network namespaces.
    pub sites: Option<Sites>,
}

/// Node certificates made per cluster (ids 1..=this).
const PKI_NODES: u64 = 7;

/// The cluster id every test node uses (the audience of the test tokens).
pub const CLUSTER_ID: &str = "test";

/// A token from the `caps.keys` ring in `pki` with these caveats: [`tokens::mint`] with a fresh
/// id, issued now, expiring in a day, for the test audience ([`CLUSTER_ID`]).
pub fn mint(pki: &Path, caveats: Vec<ledger::capability::Caveat>) -> String {
    let ring = tokens::read_ring(&pki.join("caps.keys"));
    tokens::mint(
        ring.minting_key().unwrap(),
        tokens::unique_id(),
        clock::now_secs(),
        86_400,
        CLUSTER_ID,
        caveats,
    )
    .encode()
}

/// Generate a dev PKI and capability key ring into `pki` with the real `ron-ledger certs`.
pub fn make_pki(pki: &Path, nodes: u64) {
    make_pki_for(pki, nodes, None);
}

/// [`make_pki`] with certificates for `hosts` (names and IPs; `None`: the command's default,
/// loopback and `localhost`).
pub fn make_pki_for(pki: &Path, nodes: u64, hosts: Option<&[String]>) {
    let mut cmd = Command::new(binary());
    cmd.args(["certs", "--out"])
        .arg(pki)
        .args(["--nodes", &nodes.to_string(), "--days", "2"]);
    if let Some(hosts) = hosts {
        cmd.args(["--hosts", &hosts.join(",")]);
    }
    let out = cmd.output().expect("run ron-ledger certs");
    assert!(out.status.success(), "ron-ledger certs: {out:?}");
}

/// An HTTPS reqwest client for a PKI made by [`make_pki`]: only its CA trusted, its client
/// identity presented, `token` sent as the capability (if any).
pub fn https_client(pki: &Path, token: Option<&str>) -> reqwest::Client {
    https::client(
        &pki.join("ca.pem"),
        Some((&pki.join("client.pem"), &pki.join("client.key"))),
        token,
        Duration::from_secs(15),
        Alpn::None,
    )
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Cluster {
    /// `count` configured nodes (not started); `extra` is appended to every config file.
    pub fn new(count: u64, extra: &str) -> Self {
        Self::with_log(count, extra, "text", "warn,openraft=error")
    }

    /// Like [`Cluster::new`], with the nodes' log format (`json`/`text`) and level.
    pub fn with_log(count: u64, extra: &str, format: &str, level: &str) -> Self {
        Self::build(count, extra, format, level, None)
    }

    /// Like [`Cluster::new`], node `id` running in `sites.namespaces[id - 1]` at
    /// `sites.ips[id - 1]` (see [`crate::netns::Net::sites`]), its certificate naming
    /// `sites.hosts`.
    pub fn in_sites(count: u64, extra: &str, sites: Sites) -> Self {
        Self::build(count, extra, "text", "warn,openraft=error", Some(sites))
    }

    fn build(count: u64, extra: &str, format: &str, level: &str, sites: Option<Sites>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // reqwest is built without a bundled rustls provider; install ring for this process.
        ron_ledger_client::install_crypto_provider();
        let pki = dir.path().join("pki");
        make_pki_for(&pki, PKI_NODES, sites.as_ref().map(|s| &s.hosts[..]));
        let token = mint(
            &pki,
            vec![ledger::capability::Caveat::Ops(
                ledger::capability::Op::ALL.into_iter().collect(),
            )],
        );
        let token_file = dir.path().join("admin.token");
        files::write_private(&token_file, &token);
        let mut c = Cluster {
            http: https_client(&pki, Some(&token)),
            dir,
            nodes: Vec::new(),
            extra: extra.to_string(),
            log: (format.to_string(), level.to_string()),
            pki,
            token,
            token_file,
            sites,
        };
        for _ in 0..count {
            c.add_node();
        }
        c
    }

    /// SDK settings for these seeds: HTTPS with the cluster CA and client identity, and the
    /// admin capability.
    pub fn client_config<S: Into<String>>(
        &self,
        seeds: impl IntoIterator<Item = S>,
    ) -> ron_ledger_client::ClientConfig {
        let mut config = ron_ledger_client::ClientConfig::new(seeds);
        config.tls = Some(
            ron_ledger_client::ClientTls::from_files(
                &self.pki.join("ca.pem"),
                Some((&self.pki.join("client.pem"), &self.pki.join("client.key"))),
            )
            .unwrap(),
        );
        config.capability = Some(ron_ledger_client::Capability::new(self.token.clone()));
        config
    }

    /// Environment for `ronctl`: CA, client identity and the admin token file.
    pub fn ronctl_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RONCTL_CA", self.pki.join("ca.pem").display().to_string()),
            (
                "RONCTL_CERT",
                self.pki.join("client.pem").display().to_string(),
            ),
            (
                "RONCTL_KEY",
                self.pki.join("client.key").display().to_string(),
            ),
            ("RONCTL_TOKEN_FILE", self.token_file.display().to_string()),
        ]
    }

    pub fn add_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let (api, peer) = match &self.sites {
            Some(sites) => {
                let ip = sites
                    .ips
                    .get((id - 1) as usize)
                    .expect("a site for every node");
                (format!("{ip}:{API_PORT}"), format!("{ip}:{PEER_PORT}"))
            }
            None => (
                format!("127.0.0.1:{}", ports::free_port()),
                format!("127.0.0.1:{}", ports::free_port()),
            ),
        };
        let data = self.dir.path().join(format!("node-{id}"));
        let config = self.dir.path().join(format!("node-{id}.toml"));
        assert!(
            id <= PKI_NODES,
            "the test PKI has certificates for {PKI_NODES} nodes"
        );
        let text = format!(
            "node_id = {id}\ncluster_id = \"{CLUSTER_ID}\"\ndata_dir = \"{}\"\napi_addr = \"{api}\"\npeer_addr = \"{peer}\"\n\
             [raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n{}\n\
             [tls]\nenabled = true\ncert_file = \"{pki}/node-{id}.pem\"\nkey_file = \"{pki}/node-{id}.key\"\nca_file = \"{pki}/ca.pem\"\nclient_ca_file = \"{pki}/client-ca.pem\"\n\
             [auth]\nkey_file = \"{pki}/caps.keys\"\n\
             [log]\nformat = \"{}\"\nlevel = \"{}\"\n",
            data.display(),
            self.extra,
            self.log.0,
            self.log.1,
            pki = self.pki.display(),
        );
        std::fs::write(&config, text).unwrap();
        let log = self.dir.path().join(format!("node-{id}.log"));
        self.nodes.push(Proc {
            api,
            peer,
            config,
            log,
            child: None,
        });
        id
    }

    pub fn node(&self, id: u64) -> &Proc {
        &self.nodes[(id - 1) as usize]
    }

    pub fn start(&mut self, id: u64) {
        self.start_program(id, &binary(), &[]);
    }

    /// Start node `id` with another program taking `ron-ledger start --config FILE`'s arguments
    /// (a fault-injecting build of the node), with `env` added to its environment.
    pub fn start_program(&mut self, id: u64, program: &Path, env: &[(&str, &Path)]) {
        // In a namespace: `ip netns exec` enters it and execs the program (same process).
        let mut command = match &self.sites {
            Some(sites) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &sites.namespaces[(id - 1) as usize]])
                    .arg(program);
                c
            }
            None => Command::new(program),
        };
        let n = &mut self.nodes[(id - 1) as usize];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .unwrap();
        let child = command
            .args(["start", "--config"])
            .arg(&n.config)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ron-ledger");
        n.child = Some(child);
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.nodes[(id - 1) as usize].child.take() {
            c.kill().expect("SIGKILL");
            c.wait().unwrap();
        }
    }

    /// Send `signal` (`HUP`, `TERM`, …) to node `id` with kill(1).
    pub fn signal(&self, id: u64, signal: &str) {
        let pid = self.node(id).child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Stop node `id` cleanly (SIGTERM) and wait up to 30 s for it to exit; its exit code.
    pub fn stop(&mut self, id: u64) -> i32 {
        self.signal(id, "TERM");
        let started = std::time::Instant::now();
        loop {
            if let Some(code) = self.try_exit(id) {
                return code;
            }
            if started.elapsed() > Duration::from_secs(30) {
                self.kill(id);
                panic!("node {id} still running 30 s after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `id`'s exit code once its process has exited (-1 for a signal), else `None`.
    pub fn try_exit(&mut self, id: u64) -> Option<i32> {
        let n = &mut self.nodes[(id - 1) as usize];
        let status = n.child.as_mut()?.try_wait().expect("wait on node")?;
        n.child = None;
        Some(status.code().unwrap_or(-1))
    }

    /// The last `lines` lines of node `id`'s log (for a failing test to show).
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let text = std::fs::read(&self.node(id).log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("https://{}{path}", self.node(id).api)
    }

    pub async fn get(&self, id: u64, path: &str) -> Option<(u16, Value)> {
        let r = self.http.get(self.url(id, path)).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }

    /// The value of the unlabelled Prometheus sample `name` in node `id`'s `/metrics`.
    pub async fn metric(&self, id: u64, name: &str) -> Option<f64> {
        let r = self.http.get(self.url(id, "/metrics")).send().await.ok()?;
        let text = r.text().await.ok()?;
        text.lines().find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok())?
        })
    }

    pub async fn post(&self, id: u64, path: &str, body: Value) -> Option<(u16, Value)> {
        let r = self
            .http
            .post(self.url(id, path))
            .json(&body)
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }

    /// POST `body` to `path` on node `id` and assert it is refused with `status` and `reason`
    /// (the answer is returned for further checks).
    pub async fn post_refused(
        &self,
        id: u64,
        path: &str,
        body: Value,
        status: u16,
        reason: &str,
    ) -> Value {
        let (code, v) = self.post(id, path, body).await.expect("an answer");
        assert_eq!(
            (code, v["error"]["reason"].as_str()),
            (status, Some(reason)),
            "POST {path}: {v}"
        );
        v
    }

    pub async fn status(&self, id: u64) -> Option<Value> {
        self.get(id, "/v1/status").await.map(|(_, v)| v)
    }

    pub async fn init(&self, ids: &[u64]) {
        let members: BTreeMap<String, Value> = ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    json!({"api_addr": self.node(*id).api, "peer_addr": self.node(*id).peer}),
                )
            })
            .collect();
        wait_for("node answers", Duration::from_secs(20), || async {
            self.status(ids[0]).await.is_some()
        })
        .await;
        let (code, body) = self
            .post(ids[0], "/v1/admin/init", json!({"members": members}))
            .await
            .unwrap();
        assert_eq!(code, 200, "{body}");
        self.leader(ids).await;
    }

    /// The leader every listed node agrees on.
    pub async fn leader(&self, ids: &[u64]) -> u64 {
        poll(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                let mut leaders = BTreeSet::new();
                for id in ids {
                    leaders.insert(self.status(*id).await.and_then(|s| s["leader"].as_u64()));
                }
                if leaders.len() == 1 {
                    if let Some(Some(l)) = leaders.into_iter().next() {
                        if ids.contains(&l) {
                            return Ok(l);
                        }
                    }
                }
                Err("timed out waiting for a leader all nodes agree on")
            },
        )
        .await
    }

    /// Wait until the listed nodes have the same applied index and root; return them.
    pub async fn converged(&self, ids: &[u64]) -> (u64, String) {
        poll(
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async {
                let mut seen = BTreeSet::new();
                for id in ids {
                    seen.insert(self.status(*id).await.map(|s| {
                        (
                            s["applied_index"].as_u64().unwrap_or(0),
                            s["root"].as_str().unwrap_or("").to_string(),
                        )
                    }));
                }
                if seen.len() == 1 {
                    if let Some(Some(found)) = seen.into_iter().next() {
                        return Ok(found);
                    }
                }
                Err("timed out waiting for nodes to converge")
            },
        )
        .await
    }

    /// Send a write until it is acknowledged (retrying the same ids on any node), as a client
    /// SDK would. Returns the per-event results.
    pub async fn write_until_acked(
        &self,
        path: &str,
        body: &Value,
        ids: &[u64],
        deadline: Duration,
    ) -> Vec<String> {
        let mut attempt = 0usize;
        poll(deadline, Duration::from_millis(50), || {
            let id = ids[attempt % ids.len()];
            attempt += 1;
            async move {
                if let Some((200, v)) = self.post(id, path, body.clone()).await {
                    return Ok(v["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["result"].as_str().unwrap().to_string())
                        .collect());
                }
                Err(format!("write not acknowledged within {deadline:?}"))
            }
        })
        .await
    }

    /// Balances (debits posted, credits posted) of accounts `1..=count` as node `id` reads them
    /// (linearizable reads).
    pub async fn balances(&self, id: u64, count: u128) -> BTreeMap<u128, (u128, u128)> {
        let mut out = BTreeMap::new();
        for a in 1..=count {
            let (code, v) = self
                .get(id, &format!("/v1/accounts/{a}"))
                .await
                .expect("read");
            assert_eq!(code, 200, "{v}");
            out.insert(
                a,
                (amount(&v["debits_posted"]), amount(&v["credits_posted"])),
            );
        }
        out
    }

    /// Start nodes 1..=3, initialise them as one cluster and create accounts `1..=accounts`.
    pub async fn start_three_with_accounts(&mut self, accounts: u128) {
        for id in 1..=3 {
            self.start(id);
        }
        self.init(&[1, 2, 3]).await;
        self.write_until_acked(
            "/v1/accounts",
            &crate::events::accounts_json(1..=accounts),
            &[1, 2, 3],
            Duration::from_secs(20),
        )
        .await;
    }
}

/// An amount as the API writes it (a decimal string).
fn amount(v: &Value) -> u128 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .expect("decimal string")
}
