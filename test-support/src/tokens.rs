//! Capability key rings and tokens minted from them. Every test token carries an expiry and an
//! audience first, then the caveats the test asks for.

use ledger::capability::{CapError, Caveat, KeyRing, RootKey, Token};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A ring of these `(kid, key)` entries, in order, none retired.
pub fn ring(keys: &[(&str, [u8; 32])]) -> KeyRing {
    let mut ring = KeyRing::new();
    for (kid, key) in keys {
        ring.generate_entry(*kid, *key).unwrap();
    }
    ring
}

/// The ring in the key file at `path` (as `ron-ledger certs` writes it).
pub fn read_ring(path: &Path) -> KeyRing {
    KeyRing::from_json(&std::fs::read_to_string(path).unwrap()).expect("key ring")
}

/// A fresh token id (the revocation handle), unique in this process.
pub fn unique_id() -> [u8; 16] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&0x7465_7374_6175_7468u64.to_be_bytes());
    id[8..].copy_from_slice(&n.to_be_bytes());
    id
}

/// A token from `key` with id `id`, issued at `issued_at`, expiring `lifetime_secs` later, for
/// `audience`, with `caveats` after those two.
pub fn try_mint(
    key: &RootKey,
    id: [u8; 16],
    issued_at: u64,
    lifetime_secs: u64,
    audience: &str,
    caveats: Vec<Caveat>,
) -> Result<Token, CapError> {
    let mut all = vec![
        Caveat::ExpiresAt(issued_at + lifetime_secs),
        Caveat::Audience(audience.into()),
    ];
    all.extend(caveats);
    Token::mint(key, id, issued_at, all)
}

/// [`try_mint`], panicking on an error.
pub fn mint(
    key: &RootKey,
    id: [u8; 16],
    issued_at: u64,
    lifetime_secs: u64,
    audience: &str,
    caveats: Vec<Caveat>,
) -> Token {
    try_mint(key, id, issued_at, lifetime_secs, audience, caveats).unwrap()
}
