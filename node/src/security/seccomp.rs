//! The node's seccomp profile: a deny-list that lets every syscall through except the few a
//! ledger daemon never needs and an attacker who got code execution wants first — starting
//! programs, reading or writing other processes' memory, loading kernel code, and raw sockets.
//! Denied calls fail with `EPERM`; nothing is killed, so a stray library call degrades instead
//! of taking the node down.
//!
//! [`DENIED_SYSCALLS`] and [`RAW_SOCKET_SYSCALL`] are the one list of names; `deploy/seccomp.json`
//! is the same profile for Docker/OCI runtimes and a test keeps the two equal.
//!
//! ```no_run
//! // In `main`, before any thread exists (the runtime is built afterwards and inherits it):
//! node::security::seccomp::install().expect("seccomp");
//! ```

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Syscalls denied whatever their arguments.
pub const DENIED_SYSCALLS: &[&str] = &[
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
];

/// The syscall denied only for raw sockets: domain `AF_PACKET`, or type `SOCK_RAW` (any flags).
pub const RAW_SOCKET_SYSCALL: &str = "socket";

/// `errno` returned by a denied call.
pub const EPERM: u32 = 1;
/// `AF_PACKET`, compared with `socket()`'s first argument (domain).
pub const AF_PACKET: u64 = 17;
/// `SOCK_RAW`, compared with `socket()`'s second argument (type) masked with [`SOCK_TYPE_MASK`].
pub const SOCK_RAW: u64 = 3;
/// The bits of `socket()`'s type argument that hold the type (the rest are `SOCK_CLOEXEC`,
/// `SOCK_NONBLOCK`).
pub const SOCK_TYPE_MASK: u64 = 0xf;

/// On x86_64 the x32 ABI reaches the same kernel with this bit set in the syscall number (and
/// the same audit arch), so a deny-list must deny those numbers as well.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// Why the filter could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// This CPU architecture has no syscall table here.
    #[error("seccomp is supported on x86_64 and aarch64 only, not {0}")]
    UnsupportedArch(String),
    /// A name in the list has no number on this architecture (a bug in this module).
    #[error("no syscall number for {name} on {arch:?}")]
    UnknownSyscall {
        /// The syscall.
        name: &'static str,
        /// The architecture.
        arch: TargetArch,
    },
    /// seccompiler refused the filter.
    #[error("cannot build the seccomp filter: {0}")]
    Build(String),
    /// The kernel refused the filter (no seccomp support, or a thread could not be synced).
    #[error("cannot install the seccomp filter: {0}")]
    Install(String),
}

/// The architecture this binary runs on, as seccompiler names it.
pub fn target_arch() -> Result<TargetArch, SeccompError> {
    match std::env::consts::ARCH {
        "x86_64" => Ok(TargetArch::x86_64),
        "aarch64" => Ok(TargetArch::aarch64),
        other => Err(SeccompError::UnsupportedArch(other.to_string())),
    }
}

/// The syscall numbers under which `name` is reachable on `arch` (on x86_64 this includes the
/// x32 ABI's numbers). `None` for a name this module does not know.
pub fn syscall_numbers(arch: TargetArch, name: &str) -> Option<Vec<i64>> {
    match arch {
        TargetArch::x86_64 => {
            let (native, x32_only) = match name {
                "execve" => (59, Some(520)),
                "execveat" => (322, Some(545)),
                "ptrace" => (101, Some(521)),
                "process_vm_readv" => (310, Some(539)),
                "process_vm_writev" => (311, Some(540)),
                "init_module" => (175, None),
                "finit_module" => (313, None),
                "delete_module" => (176, None),
                "kexec_load" => (246, None),
                "socket" => (41, None),
                _ => return None,
            };
            let mut numbers = vec![native, native | X32_SYSCALL_BIT];
            numbers.extend(x32_only.map(|n| n | X32_SYSCALL_BIT));
            Some(numbers)
        }
        TargetArch::aarch64 => {
            let n = match name {
                "execve" => 221,
                "execveat" => 281,
                "ptrace" => 117,
                "process_vm_readv" => 270,
                "process_vm_writev" => 271,
                "init_module" => 105,
                "finit_module" => 273,
                "delete_module" => 106,
                "kexec_load" => 104,
                "socket" => 198,
                _ => return None,
            };
            Some(vec![n])
        }
        TargetArch::riscv64 => None,
    }
}

fn condition(
    arg: u8,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

/// The compiled BPF program of the profile for `arch`.
pub fn program(arch: TargetArch) -> Result<BpfProgram, SeccompError> {
    let build = |e: seccompiler::BackendError| SeccompError::Build(e.to_string());
    let numbers = |name: &'static str| {
        syscall_numbers(arch, name).ok_or(SeccompError::UnknownSyscall { name, arch })
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for name in DENIED_SYSCALLS {
        for n in numbers(name)? {
            rules.insert(n, Vec::new());
        }
    }
    // Rules of one syscall are alternatives; the conditions inside one rule must all hold.
    let raw_socket = vec![
        SeccompRule::new(vec![
            condition(0, SeccompCmpOp::Eq, AF_PACKET).map_err(build)?
        ])
        .map_err(build)?,
        SeccompRule::new(vec![condition(
            1,
            SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK),
            SOCK_RAW,
        )
        .map_err(build)?])
        .map_err(build)?,
    ];
    for n in numbers(RAW_SOCKET_SYSCALL)? {
        rules.insert(n, raw_socket.clone());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(EPERM),
        arch,
    )
    .map_err(build)?;
    filter.try_into().map_err(build)
}

/// Install the profile on every thread of this process (TSYNC) and on all threads created
/// afterwards; also sets `no_new_privs`. There is no way back.
pub fn install() -> Result<(), SeccompError> {
    let program = program(target_arch()?)?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| SeccompError::Install(e.to_string()))
}

/// What `ron-ledger seccomp-selftest` found; printed as one JSON line.
#[derive(Debug, Serialize)]
pub struct SelftestReport {
    /// `std::env::consts::ARCH`.
    pub arch: &'static str,
    /// The filter was installed.
    pub installed: bool,
    /// Why it was not, if it was not.
    pub install_error: Option<String>,
    /// Starting `/bin/true` failed.
    pub execve_denied: bool,
    /// The `errno` that start failed with (1 = EPERM), if any.
    pub execve_errno: Option<i32>,
    /// Raw sockets are not exercised here: no dependency offers a safe way to request one. The
    /// rule is covered by a BPF-level test instead.
    pub raw_socket: &'static str,
    /// Binding a TCP listener on 127.0.0.1:0 worked.
    pub tcp_bind: bool,
    /// Writing, fsyncing, reading back and removing a temporary file worked.
    pub file_io: bool,
    /// Spawning and joining a thread worked.
    pub thread_spawn: bool,
    /// Everything above is as the profile intends.
    pub ok: bool,
}

/// Install the profile in this process, then check that exec is denied and that ordinary work
/// (TCP, files, threads) still runs. Only for the `seccomp-selftest` subcommand: the filter stays.
pub fn selftest() -> SelftestReport {
    let mut report = SelftestReport {
        arch: std::env::consts::ARCH,
        installed: false,
        install_error: None,
        execve_denied: false,
        execve_errno: None,
        raw_socket: "not tested in-process (no safe API for SOCK_RAW); see the BPF test",
        tcp_bind: false,
        file_io: false,
        thread_spawn: false,
        ok: false,
    };
    if let Err(e) = install() {
        report.install_error = Some(e.to_string());
        return report;
    }
    report.installed = true;
    if let Err(e) = std::process::Command::new("/bin/true").status() {
        report.execve_errno = e.raw_os_error();
        report.execve_denied = e.raw_os_error() == Some(EPERM as i32);
    }
    report.tcp_bind = std::net::TcpListener::bind("127.0.0.1:0").is_ok();
    report.file_io = file_round_trip().is_ok();
    report.thread_spawn = std::thread::spawn(|| 42)
        .join()
        .map(|v| v == 42)
        .unwrap_or(false);
    report.ok = report.execve_denied && report.tcp_bind && report.file_io && report.thread_spawn;
    report
}

fn file_round_trip() -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = std::env::temp_dir().join(format!("ron-ledger-seccomp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(b"ron-ledger")?;
        file.sync_all()?;
        file.seek(SeekFrom::Start(0))?;
        let mut back = String::new();
        file.read_to_string(&mut back)?;
        if back != "ron-ledger" {
            return Err(std::io::Error::other("read back different bytes"));
        }
        Ok(())
    })();
    let removed = std::fs::remove_file(&path);
    result.and(removed)
}
