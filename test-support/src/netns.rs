//! Real networks for partition tests: every node in its own network namespace, joined to every
//! other by its own veth pair, and the faults made by the kernel's packet filter in those
//! namespaces (the tests run as root).
//!
//! Layout of one [`Net`] (block `B`, nodes `1..=n`):
//!
//! - namespace `ronpt-<pid>-<B>-<i>` for node `i`, its address `10.213.B.i/32` on its `lo`;
//! - a veth pair per pair of nodes: in node `i`'s namespace the end towards node `j` is `l<j>`,
//!   with a host route `10.213.B.j/32 dev l<j>`. No bridge: a bridge in the root namespace is
//!   subject to the host's `FORWARD` chain when `br_netfilter` is loaded (Docker sets its
//!   policy to `DROP`), and a link of its own per pair lets one pair be cut alone;
//! - a veth pair from each namespace to the root namespace (`ronpt<B>h<i>` there, `host` in
//!   the namespace) with `10.213.B.254` on the root side, so the test process reaches every
//!   node's API (these links are never cut: the test watches the nodes through them).
//!
//! Faults are `iptables` rules inside the nodes' namespaces, so deleting a namespace deletes
//! them too, and nothing is ever added to the host's own rule set:
//!
//! - [`Net::cut`]: both directions of a link black-holed at the receivers (`INPUT -i l<j> -j
//!   DROP` on both sides): packets leave and vanish, as in a real partition, rather than
//!   failing at once in the sender (which a local `OUTPUT` drop would do);
//! - [`Net::drop_requests`]: a one-way partition at the level a request/response protocol
//!   sees: every packet of a TCP connection opened by `from` towards `to` is dropped at `to`
//!   (`-m conntrack --ctdir ORIGINAL`), while connections `to` opens towards `from` work both
//!   ways. (A one-way drop of bare packets would break both, TCP needing both directions.)
//!   Connection tracking is switched on in every namespace when it is made, so it knows which
//!   side opened each connection from its first packet;
//! - [`Net::loss`]: a share of the packets arriving at a node dropped at random
//!   (`-m statistic --mode random`); the senders see real loss and retransmit.
//!
//! Delay: this kernel has no `netem` (`CONFIG_NET_SCH_NETEM` is not set, and no qdisc here can
//! hold a packet back for a time), so [`Net::relay_peer_links`] routes every peer connection
//! through a relay in the test process (a `DNAT` rule in the caller's namespace sends it to
//! the root side) whose delay per direction the test sets ([`Relays::delay_from`]).
//!
//! Cleanup: dropping a [`Net`] kills every process left in its namespaces and deletes them
//! (their links, addresses, routes and rules go with them). [`Net::new`] first sweeps what a
//! crashed run left: namespaces named `ronpt-<pid>-…` whose process is gone, and root-side
//! links of blocks no namespace uses any more.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What every namespace and root-side link this module makes is named with.
pub const PREFIX: &str = "ronpt";

/// The client API port of every node (each namespace has its own ports).
pub const API_PORT: u16 = 7100;

/// The peer port of every node.
pub const PEER_PORT: u16 = 7200;

/// Where the nodes of a [`crate::cluster::Cluster`] run when they are not on loopback: node
/// `id` in network namespace `namespaces[id - 1]`, listening on `ips[id - 1]` (ports
/// [`API_PORT`] and [`PEER_PORT`]), started with `ip netns exec`.
#[derive(Clone, Debug)]
pub struct Sites {
    /// Namespace of each node.
    pub namespaces: Vec<String>,
    /// Address of each node.
    pub ips: Vec<Ipv4Addr>,
    /// Names and addresses the node certificates must carry (`ron-ledger certs --hosts`).
    pub hosts: Vec<String>,
}

/// One packet-filter rule this module added: in node `node`'s namespace, `spec` (chain first)
/// in `table`.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    node: u64,
    table: &'static str,
    spec: Vec<String>,
    fault: Fault,
}

/// What a rule is for, so it can be healed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Part of a cut or one-way partition of the link between two nodes (lower id first).
    Link(u64, u64),
    /// Random loss at a node.
    Loss(u64),
}

/// The namespaces, links and faults of one test. See the module docs.
pub struct Net {
    owner: u32,
    block: u8,
    nodes: u64,
    /// Namespaces made so far (all are deleted on drop, also after a failed set-up).
    made: Vec<String>,
    rules: Vec<Rule>,
    relayed: bool,
}

/// Run `program args`; `Err(its stderr)` unless it exits 0.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` exited {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// [`run`], panicking on failure (set-up and faults must take effect, or the test means nothing).
fn must(program: &str, args: &[&str]) -> String {
    run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Namespaces named with [`PREFIX`]: (name, owner pid, block).
fn our_namespaces() -> Vec<(String, u32, u8)> {
    let list = run("ip", &["netns", "list"]).unwrap_or_default();
    list.lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
            let mut parts = rest.split('-');
            let pid = parts.next()?.parse().ok()?;
            let block = parts.next()?.parse().ok()?;
            Some((name.to_string(), pid, block))
        })
        .collect()
}

/// Root-namespace links named `ronpt<B>h<i>`: (name, block).
fn our_root_links() -> Vec<(String, u8)> {
    let list = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    list.lines()
        .filter_map(|l| {
            // "12: ronpt3h1@if2: <BROADCAST,..."
            let name = l.split(": ").nth(1)?.split('@').next()?;
            let rest = name.strip_prefix(PREFIX)?;
            let (block, node) = rest.split_once('h')?;
            node.parse::<u64>().ok()?;
            Some((name.to_string(), block.parse().ok()?))
        })
        .collect()
}

/// Kill every process in namespace `name` (SIGKILL) and delete it.
fn remove_namespace(name: &str) {
    for pid in run("ip", &["netns", "pids", name])
        .unwrap_or_default()
        .split_whitespace()
    {
        let _ = run("kill", &["-9", pid]);
    }
    let _ = run("ip", &["netns", "del", name]);
}

impl Net {
    /// Remove what earlier runs left behind: namespaces whose owning process is gone (with any
    /// process still inside them) and root-side links of blocks no namespace uses.
    pub fn sweep() {
        let me = std::process::id();
        for (name, pid, _) in our_namespaces() {
            if pid != me && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                eprintln!("netns: removing {name}, left by process {pid}");
                remove_namespace(&name);
            }
        }
        let used: BTreeSet<u8> = our_namespaces().into_iter().map(|(_, _, b)| b).collect();
        for (link, block) in our_root_links() {
            if !used.contains(&block) {
                eprintln!("netns: removing link {link}, left by an earlier run");
                let _ = run("ip", &["link", "del", &link]);
            }
        }
    }

    /// `nodes` namespaces joined pairwise and to this one (see the module docs), after a
    /// [`Net::sweep`]. Panics (after removing what it made) when a step fails; the tests need
    /// root, `ip` (iproute2) and `iptables`.
    pub fn new(nodes: u64) -> Self {
        assert!((1..=200).contains(&nodes), "1 to 200 nodes");
        run("ip", &["netns", "list"]).unwrap_or_else(|e| {
            panic!("the partition tests need iproute2 and root (scripts/install-deps.sh): {e}")
        });
        run("iptables", &["--version"]).unwrap_or_else(|e| {
            panic!("the partition tests need iptables (scripts/install-deps.sh): {e}")
        });
        Self::sweep();
        let used: BTreeSet<u8> = our_namespaces().into_iter().map(|(_, _, b)| b).collect();
        let block = (0..=250u8)
            .find(|b| !used.contains(b))
            .expect("a free address block");
        let mut net = Net {
            owner: std::process::id(),
            block,
            nodes,
            made: Vec::new(),
            rules: Vec::new(),
            relayed: false,
        };
        for i in 1..=nodes {
            let ns = net.namespace(i);
            must("ip", &["netns", "add", &ns]);
            net.made.push(ns.clone());
            must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            let addr = format!("{}/32", net.ip(i));
            must("ip", &["-n", &ns, "addr", "add", &addr, "dev", "lo"]);
            // Connection tracking from the first packet on, for `--ctdir` (a no-op rule).
            net.iptables(
                i,
                "filter",
                &[
                    "-A",
                    "INPUT",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW,ESTABLISHED,RELATED,INVALID,UNTRACKED",
                ],
            );
        }
        for i in 1..=nodes {
            for j in i + 1..=nodes {
                let (ni, nj) = (net.namespace(i), net.namespace(j));
                let (li, lj) = (format!("l{i}"), format!("l{j}"));
                must(
                    "ip",
                    &[
                        "link", "add", &lj, "netns", &ni, "type", "veth", "peer", "name", &li,
                        "netns", &nj,
                    ],
                );
                for (ns, dev, to, from) in [(&ni, &lj, j, i), (&nj, &li, i, j)] {
                    must("ip", &["-n", ns, "link", "set", dev, "up"]);
                    let (dst, src) = (format!("{}/32", net.ip(to)), net.ip(from).to_string());
                    must(
                        "ip",
                        &["-n", ns, "route", "add", &dst, "dev", dev, "src", &src],
                    );
                }
            }
        }
        let host = net.host_ip().to_string();
        for i in 1..=nodes {
            let (ns, root_end) = (net.namespace(i), net.root_link(i));
            // A link of the same name left by a crashed run of this block (its namespace is gone).
            let _ = run("ip", &["link", "del", &root_end]);
            must(
                "ip",
                &[
                    "link", "add", &root_end, "type", "veth", "peer", "name", "host", "netns", &ns,
                ],
            );
            must(
                "ip",
                &["addr", "add", &format!("{host}/32"), "dev", &root_end],
            );
            must("ip", &["link", "set", &root_end, "up"]);
            must("ip", &["-n", &ns, "link", "set", "host", "up"]);
            let node = net.ip(i).to_string();
            must(
                "ip",
                &[
                    "route",
                    "add",
                    &format!("{node}/32"),
                    "dev",
                    &root_end,
                    "src",
                    &host,
                ],
            );
            must(
                "ip",
                &[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    &format!("{host}/32"),
                    "dev",
                    "host",
                    "src",
                    &node,
                ],
            );
        }
        net
    }

    /// Node `id`'s namespace.
    pub fn namespace(&self, id: u64) -> String {
        format!("{PREFIX}-{}-{}-{id}", self.owner, self.block)
    }

    fn root_link(&self, id: u64) -> String {
        format!("{PREFIX}{}h{id}", self.block)
    }

    /// Node `id`'s address.
    pub fn ip(&self, id: u64) -> Ipv4Addr {
        assert!((1..=self.nodes).contains(&id), "no node {id}");
        Ipv4Addr::new(10, 213, self.block, id as u8)
    }

    /// This (the root) namespace's address on the links to the nodes.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.block, 254)
    }

    /// Where a [`crate::cluster::Cluster`] puts its nodes: one per namespace, certificates for
    /// every address here (and loopback).
    pub fn sites(&self) -> Sites {
        let ips: Vec<Ipv4Addr> = (1..=self.nodes).map(|i| self.ip(i)).collect();
        let mut hosts: Vec<String> = ips.iter().map(ToString::to_string).collect();
        hosts.push(self.host_ip().to_string());
        hosts.extend(["127.0.0.1".to_string(), "localhost".to_string()]);
        Sites {
            namespaces: (1..=self.nodes).map(|i| self.namespace(i)).collect(),
            ips,
            hosts,
        }
    }

    /// `iptables -w -t table args…` in node `id`'s namespace.
    fn iptables(&self, id: u64, table: &str, args: &[&str]) {
        let ns = self.namespace(id);
        let mut all: Vec<&str> = vec!["netns", "exec", &ns, "iptables", "-w", "-t", table];
        all.extend_from_slice(args);
        must("ip", &all);
    }

    fn add_rule(&mut self, node: u64, spec: &[&str], fault: Fault) {
        let mut args = vec!["-A"];
        args.extend_from_slice(spec);
        self.iptables(node, "filter", &args);
        self.rules.push(Rule {
            node,
            table: "filter",
            spec: spec.iter().map(ToString::to_string).collect(),
            fault,
        });
    }

    fn remove_rules(&mut self, which: impl Fn(&Rule) -> bool) {
        let (gone, kept): (Vec<Rule>, Vec<Rule>) =
            std::mem::take(&mut self.rules).into_iter().partition(which);
        self.rules = kept;
        for r in gone {
            let mut args = vec!["-D"];
            args.extend(r.spec.iter().map(String::as_str));
            self.iptables(r.node, r.table, &args);
        }
    }

    fn link(a: u64, b: u64) -> Fault {
        Fault::Link(a.min(b), a.max(b))
    }

    fn assert_not_relayed(&self) {
        assert!(
            !self.relayed,
            "peer traffic goes through the relays, not the links: cutting a link would not touch it"
        );
    }

    /// Black-hole the link between `a` and `b` in both directions.
    pub fn cut(&mut self, a: u64, b: u64) {
        self.assert_not_relayed();
        for (at, from) in [(a, b), (b, a)] {
            let dev = format!("l{from}");
            self.add_rule(at, &["INPUT", "-i", &dev, "-j", "DROP"], Self::link(a, b));
        }
    }

    /// Cut every link of node `id` (its link to this process stays up, so the test can still
    /// talk to it and watch it).
    pub fn isolate(&mut self, id: u64) {
        for other in (1..=self.nodes).filter(|o| *o != id) {
            self.cut(id, other);
        }
    }

    /// One-way partition: every packet of the TCP connections `from` opens towards `to` is
    /// dropped on arrival at `to` (so `from`'s requests to `to` are lost), while the
    /// connections `to` opens towards `from` carry requests and answers both ways.
    pub fn drop_requests(&mut self, from: u64, to: u64) {
        self.assert_not_relayed();
        let dev = format!("l{from}");
        self.add_rule(
            to,
            &[
                "INPUT",
                "-i",
                &dev,
                "-m",
                "conntrack",
                "--ctdir",
                "ORIGINAL",
                "-j",
                "DROP",
            ],
            Self::link(from, to),
        );
    }

    /// Remove every cut and one-way partition between `a` and `b`.
    pub fn heal(&mut self, a: u64, b: u64) {
        let link = Self::link(a, b);
        self.remove_rules(|r| r.fault == link);
    }

    /// Remove every cut and one-way partition.
    pub fn heal_all(&mut self) {
        self.remove_rules(|r| matches!(r.fault, Fault::Link(..)));
    }

    /// Drop each packet arriving at node `id` (from anywhere but itself) with probability
    /// `percent` / 100.
    pub fn loss(&mut self, id: u64, percent: f64) {
        let p = format!("{:.4}", percent / 100.0);
        self.add_rule(
            id,
            &[
                "INPUT",
                "!",
                "-i",
                "lo",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ],
            Fault::Loss(id),
        );
    }

    /// Remove the loss at node `id`.
    pub fn clear_loss(&mut self, id: u64) {
        self.remove_rules(|r| r.fault == Fault::Loss(id));
    }

    /// Put a relay in this process on every directed peer link `i → j`: a listener on
    /// [`Net::host_ip`] forwarding to `j`'s peer port, and a `DNAT` rule in `i`'s namespace
    /// sending `i`'s connections to `j`'s peer port there. Call it before the nodes start (a
    /// connection opened before the rule exists would bypass the relay). From then on the
    /// peer traffic no longer uses the node-to-node links, so [`Net::cut`] and
    /// [`Net::drop_requests`] refuse; [`Net::loss`] still applies (on the link to the root
    /// namespace, which the relayed traffic uses).
    pub async fn relay_peer_links(&mut self) -> Relays {
        let (stop, stopped) = tokio::sync::watch::channel(());
        let mut links = Vec::new();
        for from in 1..=self.nodes {
            for to in (1..=self.nodes).filter(|t| *t != from) {
                let listener = tokio::net::TcpListener::bind((self.host_ip(), 0))
                    .await
                    .expect("bind a relay");
                let at = listener.local_addr().unwrap();
                let upstream = SocketAddr::from((self.ip(to), PEER_PORT));
                let link = RelayLink {
                    from,
                    to,
                    forward: Arc::new(AtomicU64::new(0)),
                    back: Arc::new(AtomicU64::new(0)),
                };
                tokio::spawn(relay(
                    listener,
                    upstream,
                    link.forward.clone(),
                    link.back.clone(),
                    stopped.clone(),
                ));
                let (dst, port, to_dest) = (
                    self.ip(to).to_string(),
                    PEER_PORT.to_string(),
                    at.to_string(),
                );
                self.iptables(
                    from,
                    "nat",
                    &[
                        "-A",
                        "OUTPUT",
                        "-p",
                        "tcp",
                        "-d",
                        &dst,
                        "--dport",
                        &port,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        &to_dest,
                    ],
                );
                links.push(link);
            }
        }
        self.relayed = true;
        Relays { links, _stop: stop }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.made {
            remove_namespace(ns);
        }
        // The root ends go with their namespaces, unless a process still held one open.
        for i in 1..=self.nodes {
            let link = self.root_link(i);
            if our_root_links().iter().any(|(l, _)| *l == link) {
                let _ = run("ip", &["link", "del", &link]);
            }
        }
    }
}

/// One directed peer link's relay and its delays (milliseconds): `forward` on the bytes from
/// the caller (`from`) to `to`, `back` on the answers.
struct RelayLink {
    from: u64,
    to: u64,
    forward: Arc<AtomicU64>,
    back: Arc<AtomicU64>,
}

/// The relays of [`Net::relay_peer_links`]; dropping this stops them.
pub struct Relays {
    links: Vec<RelayLink>,
    _stop: tokio::sync::watch::Sender<()>,
}

impl Relays {
    /// Every byte node `id` sends to a peer, on connections either side opened, reaches it
    /// `ms` milliseconds later (0: no delay), like `netem delay` on `id`'s own interface.
    pub fn delay_from(&self, id: u64, ms: u64) {
        for l in &self.links {
            if l.from == id {
                l.forward.store(ms, Ordering::Relaxed);
            }
            if l.to == id {
                l.back.store(ms, Ordering::Relaxed);
            }
        }
    }
}

/// Accept connections on `listener` and relay each to `upstream` until `stop` is dropped.
async fn relay(
    listener: tokio::net::TcpListener,
    upstream: SocketAddr,
    forward: Arc<AtomicU64>,
    back: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let caller = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let (forward, back, stop) = (forward.clone(), back.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(Ok(callee)) = tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::TcpStream::connect(upstream),
            )
            .await
            else {
                return; // dropping the caller's socket tells it
            };
            let _ = (caller.set_nodelay(true), callee.set_nodelay(true));
            let (cr, cw) = caller.into_split();
            let (ur, uw) = callee.into_split();
            tokio::join!(
                pipe(cr, uw, forward, stop.clone()),
                pipe(ur, cw, back, stop)
            );
        });
    }
}

/// Copy `from` to `to`, each chunk written `delay` ms after it was read (in order), until
/// either side ends or `stop` is dropped. The wait before a write is the emulated latency.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
            if tx.send((due, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::select! {
        _ = stop.changed() => {}
        _ = async { tokio::join!(reader, writer) } => {}
    }
}
