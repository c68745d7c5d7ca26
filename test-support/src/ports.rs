//! Loopback ports for servers that must know their address up front (peers, config files).
//!
//! Ports come from below the kernel's ephemeral range (32768–60999 by default on Linux), the
//! range it takes the local port of every outgoing connection from. A port the kernel picks for
//! `bind(0)` lies in that range, so between the check and the server's own bind any connection
//! the test opens could take it, and the server fails to start (a CI run saw a node of a
//! five-node test never answer that way). A port below the range is never given to a
//! connection: once found free here it stays free for its server, unless another test process
//! picks the same one — each process walks its own sequence, starting where its process id
//! says, and skips ports it cannot bind.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

/// The ports handed out: `LOW..HIGH`, below the ephemeral range.
const LOW: u32 = 20_000;
const HIGH: u32 = 32_000;

/// How far this process has walked its sequence.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// `127.0.0.1:<port>` with a port that was free a moment ago and that no outgoing connection
/// can take.
pub fn free_addr() -> SocketAddr {
    let span = HIGH - LOW;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + (start + step) % span).expect("below 32,000");
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().expect("a bound listener has an address");
        }
    }
    panic!("no free loopback port in {LOW}..{HIGH}")
}

/// A loopback port that was free a moment ago (see [`free_addr`]).
pub fn free_port() -> u16 {
    free_addr().port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_bindable_and_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in &ports {
            assert!((LOW..HIGH).contains(&u32::from(*p)), "{p}");
            std::net::TcpListener::bind(("127.0.0.1", *p)).expect("still free");
        }
    }
}
