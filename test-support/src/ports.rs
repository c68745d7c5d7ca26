//! Loopback ports for servers that must know their address up front (peers, config files).
//! The port was free a moment ago; nothing holds it.

use std::net::SocketAddr;

/// `127.0.0.1:<port>` with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    free_addr().port()
}
