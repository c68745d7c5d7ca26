//! The seccomp profile: the compiled BPF program decides as intended (run through a small
//! classic-BPF interpreter), `deploy/seccomp.json` denies exactly the Rust list, the binary's
//! selftest sees exec denied, and a node started with `--seccomp` serves writes and reads.

use node::security::seccomp::{self, DENIED_SYSCALLS, RAW_SOCKET_SYSCALL};
use seccompiler::{sock_filter, TargetArch};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use test_support::ports::free_port;
use test_support::{clock, files, tokens};

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_EPERM: u32 = 0x0005_0000 | 1;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

/// Run a seccomp classic-BPF program over `struct seccomp_data` the way the kernel does (the
/// subset seccompiler emits: LD W ABS, ALU AND K, JA/JEQ/JGT/JGE/JSET K, RET K).
fn run(program: &[sock_filter], nr: i64, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&(nr as u32).to_ne_bytes());
    data.extend_from_slice(&arch.to_ne_bytes());
    data.extend_from_slice(&0u64.to_ne_bytes());
    for a in args {
        data.extend_from_slice(&a.to_ne_bytes());
    }
    let (mut acc, mut pc) = (0u32, 0usize);
    for _ in 0..4096 {
        let ins = &program[pc];
        let (code, k) = (ins.code, ins.k);
        pc += 1;
        match code & 0x07 {
            0x00 => {
                assert_eq!(code, 0x20, "only LD W ABS");
                let at = k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            0x04 => {
                assert_eq!(code, 0x54, "only ALU AND K");
                acc &= k;
            }
            0x05 => {
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => acc == k,
                    0x20 => acc > k,
                    0x30 => acc >= k,
                    0x40 => acc & k != 0,
                    op => panic!("unexpected jump op {op:#x}"),
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            0x06 => return k,
            class => panic!("unexpected BPF class {class:#x}"),
        }
    }
    panic!("program did not return");
}

fn nr(arch: TargetArch, name: &str) -> i64 {
    seccomp::syscall_numbers(arch, name).unwrap()[0]
}

#[test]
fn the_program_denies_the_list_and_raw_sockets_and_allows_the_rest() {
    for (arch, audit, read_nr, connect_nr) in [
        (TargetArch::x86_64, AUDIT_ARCH_X86_64, 0, 42),
        (TargetArch::aarch64, AUDIT_ARCH_AARCH64, 63, 203),
    ] {
        let p = seccomp::program(arch).unwrap();
        for name in DENIED_SYSCALLS {
            for n in seccomp::syscall_numbers(arch, name).unwrap() {
                assert_eq!(
                    run(&p, n, audit, [0; 6]),
                    RET_EPERM,
                    "{arch:?} {name} ({n:#x})"
                );
            }
        }
        let socket = nr(arch, RAW_SOCKET_SYSCALL);
        const AF_UNIX: u64 = 1;
        const AF_INET: u64 = 2;
        const AF_INET6: u64 = 10;
        const AF_PACKET: u64 = 17;
        const STREAM: u64 = 1;
        const DGRAM: u64 = 2;
        const RAW: u64 = 3;
        const NONBLOCK: u64 = 0o4000;
        const CLOEXEC: u64 = 0o2000000;
        let cases = [
            (AF_INET, STREAM | CLOEXEC, RET_ALLOW),
            (AF_INET6, STREAM | NONBLOCK | CLOEXEC, RET_ALLOW),
            (AF_INET, DGRAM, RET_ALLOW),
            (AF_UNIX, STREAM | CLOEXEC, RET_ALLOW),
            (AF_INET, RAW, RET_EPERM),
            (AF_INET6, RAW | NONBLOCK | CLOEXEC, RET_EPERM),
            (AF_INET, RAW | CLOEXEC, RET_EPERM),
            (AF_PACKET, DGRAM, RET_EPERM),
            (AF_PACKET, RAW | CLOEXEC, RET_EPERM),
            // Upper 32 bits are not part of an int argument.
            (AF_INET | (1 << 32), STREAM, RET_ALLOW),
        ];
        for (domain, ty, want) in cases {
            let got = run(&p, socket, audit, [domain, ty, 0, 0, 0, 0]);
            assert_eq!(got, want, "{arch:?} socket({domain}, {ty:#o})");
        }
        assert_eq!(run(&p, read_nr, audit, [0; 6]), RET_ALLOW, "{arch:?} read");
        assert_eq!(
            run(&p, connect_nr, audit, [0; 6]),
            RET_ALLOW,
            "{arch:?} connect"
        );
        // A syscall from another ABI (e.g. 32-bit int 0x80) is not let through unfiltered.
        assert_eq!(run(&p, 11, AUDIT_ARCH_I386, [0; 6]), RET_KILL_PROCESS);
    }
}

#[test]
fn syscall_numbers_match_the_host_libc() {
    let arch = seccomp::target_arch().unwrap();
    let expected: &[(&str, i64)] = &[
        ("execve", libc::SYS_execve),
        ("execveat", libc::SYS_execveat),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("kexec_load", libc::SYS_kexec_load),
        ("socket", libc::SYS_socket),
    ];
    assert_eq!(expected.len(), DENIED_SYSCALLS.len() + 1);
    for (name, number) in expected {
        assert_eq!(nr(arch, name), *number, "{name}");
    }
    assert!(seccomp::syscall_numbers(arch, "read").is_none());
}

#[test]
fn deploy_profile_denies_exactly_the_rust_list() {
    let path =
        test_support::paths::workspace_root(env!("CARGO_MANIFEST_DIR")).join("deploy/seccomp.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let profile: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ALLOW");
    let arches: Vec<&str> = profile["architectures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(arches.contains(&"SCMP_ARCH_X86_64") && arches.contains(&"SCMP_ARCH_AARCH64"));
    let mut unconditional = BTreeSet::new();
    let mut conditional = Vec::new();
    for rule in profile["syscalls"].as_array().unwrap() {
        assert_eq!(rule["action"], "SCMP_ACT_ERRNO", "{rule}");
        assert_eq!(rule["errnoRet"], u64::from(seccomp::EPERM), "{rule}");
        let names = rule["names"].as_array().unwrap();
        match rule.get("args") {
            None => {
                for n in names {
                    assert!(
                        unconditional.insert(n.as_str().unwrap().to_string()),
                        "{n} twice"
                    );
                }
            }
            Some(args) => {
                assert_eq!(names.len(), 1);
                assert_eq!(names[0], RAW_SOCKET_SYSCALL);
                conditional.push(args.clone());
            }
        }
    }
    let rust: BTreeSet<String> = DENIED_SYSCALLS.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = rust.difference(&unconditional).collect();
    let extra: Vec<_> = unconditional.difference(&rust).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "deploy/seccomp.json drifted from node::security::seccomp::DENIED_SYSCALLS: missing {missing:?}, extra {extra:?}"
    );
    let want = vec![
        serde_json::json!([{"index": 0, "value": seccomp::AF_PACKET, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]),
        serde_json::json!([{"index": 1, "value": seccomp::SOCK_TYPE_MASK, "valueTwo": seccomp::SOCK_RAW, "op": "SCMP_CMP_MASKED_EQ"}]),
    ];
    assert_eq!(conditional, want, "raw-socket rules drifted");
}

#[test]
fn selftest_sees_exec_denied_with_eperm() {
    let out = Command::new(env!("CARGO_BIN_EXE_ron-ledger"))
        .arg("seccomp-selftest")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "selftest failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["installed"], true, "{report}");
    assert_eq!(report["execve_denied"], true, "{report}");
    assert_eq!(report["execve_errno"], 1, "{report}");
    for key in ["tcp_bind", "file_io", "thread_spawn", "ok"] {
        assert_eq!(report[key], true, "{key}: {report}");
    }
}

/// Kills the child node however the test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_under_seccomp_serves_writes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("node.log");
    let (api_port, peer_port) = (free_port(), free_port());
    // Security stays on: writes carry a capability minted from the node's key ring.
    let ring = tokens::ring(&[("k1", [7u8; 32])]);
    let key_file = dir.path().join("caps.keys");
    files::write_private(&key_file, &ring.to_json());
    let token = tokens::mint(
        ring.get("k1").unwrap(),
        [1u8; 16],
        clock::now_secs(),
        3600,
        "ron-ledger",
        vec![],
    )
    .encode();
    let bearer = format!("Bearer {token}");
    let child = Command::new(env!("CARGO_BIN_EXE_ron-ledger"))
        .args(["start", "--amnesia", "--seccomp", "--node-id", "1"])
        .args(["--api-addr", &format!("127.0.0.1:{api_port}")])
        .args(["--peer-addr", &format!("127.0.0.1:{peer_port}")])
        .args(["--set", &format!("auth.key_file={}", key_file.display())])
        .args(["--set", "tls.mtls_required=false"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let base = format!("http://127.0.0.1:{api_port}");
    node::security::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Ready means alive and a leader elected.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("node exited with {status}: {}", log());
        }
        let ready = match http.get(format!("{base}/readyz")).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "node not ready: {}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let healthz = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert!(healthz.status().is_success());
    assert!(log().contains("seccomp filter installed"), "{}", log());

    let post = |path: &'static str, body: &'static str| {
        let http = http.clone();
        let url = format!("{base}{path}");
        let bearer = bearer.clone();
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .header("authorization", bearer)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            text
        }
    };
    post(
        "/v1/accounts",
        r#"[{"id":"1","ledger":1,"code":1},{"id":"2","ledger":1,"code":1}]"#,
    )
    .await;
    post(
        "/v1/transfers",
        r#"[{"id":"100","debit_account_id":"1","credit_account_id":"2","amount":"25","ledger":1,"code":1}]"#,
    )
    .await;
    let r = http
        .get(format!("{base}/v1/accounts/2"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let account: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    let credits = &account["credits_posted"];
    assert!(
        credits == "25" || credits == 25,
        "credits_posted {credits} in {account}"
    );
    assert!(child.0.try_wait().unwrap().is_none(), "node still running");
}
