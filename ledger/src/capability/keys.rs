//! Root keys and the key ring: the 32-byte secrets that mint capabilities, each named by a key
//! id (KID). Secrets live in [`Zeroizing`] buffers, never appear in `Debug` output or error
//! messages, and are never `Serialize`d except through [`KeyRing::to_json`], which itself
//! returns a zeroizing string.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::caveat::is_printable;
use super::CapError;

/// Longest key id (bytes of UTF-8); the token stores its length in one byte.
pub const KID_BYTES_MAX: usize = 64;
/// Most keys one [`KeyRing`] holds.
pub const KEY_RING_KEYS_MAX: usize = 64;
/// Length of a root key's secret.
pub const ROOT_KEY_BYTES: usize = 32;

/// A 32-byte root secret and the key id tokens minted with it carry.
///
/// An empty kid is allowed: such a key mints kid-less tokens, which only verify when the
/// verifier does not require a kid (it then tries every key in its ring).
#[derive(Clone)]
pub struct RootKey {
    kid: String,
    // Boxed so that moving a key (into a ring, as the ring grows) moves a pointer, not a copy
    // of the secret that would be left behind unwiped.
    key: Box<Zeroizing<[u8; ROOT_KEY_BYTES]>>,
}

impl RootKey {
    /// A root key named `kid` (at most 64 bytes, no control characters).
    pub fn new(kid: impl Into<String>, key: [u8; ROOT_KEY_BYTES]) -> Result<Self, CapError> {
        let key = Box::new(Zeroizing::new(key));
        let kid = kid.into();
        check_kid(&kid).map_err(CapError::KeyFile)?;
        Ok(RootKey { kid, key })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub(super) fn secret(&self) -> &[u8; ROOT_KEY_BYTES] {
        &self.key
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Check a kid's bounds; the error text names the problem, never the key.
pub(super) fn check_kid(kid: &str) -> Result<(), String> {
    if kid.len() > KID_BYTES_MAX {
        return Err(format!(
            "kid is {} bytes; at most {KID_BYTES_MAX}",
            kid.len()
        ));
    }
    if !is_printable(kid) {
        return Err("kid contains control characters".into());
    }
    Ok(())
}

struct Entry {
    key: RootKey,
    retired: bool,
}

/// The root keys a node verifies with, in file order. Several may be active at once during a
/// rotation; a `retired` key still verifies the tokens it minted but is never used to mint.
/// Removing a key from the ring makes every token it minted fail with `UnknownKid`.
///
/// Key file format (JSON, unknown fields rejected):
/// `{"keys":[{"kid":"k1","key":"<64 hex digits>","retired":false}]}` (`retired` defaults to
/// false).
///
/// ```
/// use ledger::capability::KeyRing;
///
/// let ring = KeyRing::from_json(&format!(
///     r#"{{"keys":[{{"kid":"old","key":"{}","retired":true}},{{"kid":"new","key":"{}"}}]}}"#,
///     "11".repeat(32),
///     "22".repeat(32),
/// ))
/// .unwrap();
/// assert_eq!(ring.minting_key().unwrap().kid(), "new");
/// assert_eq!(ring.kids(), vec![("old".to_string(), true), ("new".to_string(), false)]);
/// assert!(!format!("{ring:?}").contains("1111"));
/// ```
#[derive(Default)]
pub struct KeyRing {
    entries: Vec<Entry>,
}

impl KeyRing {
    /// An empty ring (it verifies nothing until keys are added).
    pub fn new() -> Self {
        KeyRing::default()
    }

    /// Parse a key file. Rejects malformed JSON, unknown fields, an empty ring, more than
    /// [`KEY_RING_KEYS_MAX`] keys, an empty or duplicate kid, and keys that are not exactly 64
    /// hex digits. Secrets are decoded straight into zeroizing buffers.
    pub fn from_json(text: &str) -> Result<Self, CapError> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| CapError::KeyFile(format!("malformed key file: {e}")))?;
        if file.keys.is_empty() {
            return Err(CapError::KeyFile("the key file holds no keys".into()));
        }
        let mut ring = KeyRing::new();
        for entry in file.keys {
            let key = RootKey {
                kid: entry.kid,
                key: entry.key.0,
            };
            ring.insert(key, entry.retired)?;
        }
        Ok(ring)
    }

    /// The key file for this ring (the format [`KeyRing::from_json`] reads), in a string that
    /// is wiped when dropped.
    pub fn to_json(&self) -> Zeroizing<String> {
        let kids: Vec<String> = self
            .entries
            .iter()
            .map(|e| serde_json::to_string(&e.key.kid).unwrap_or_else(|_| "\"\"".into()))
            .collect();
        // Reserve everything up front so the string never reallocates and leaves an unwiped copy
        // of a secret behind.
        let per_entry = r#"    {"kid":,"key":"","retired":false},"#.len() + 2 * ROOT_KEY_BYTES + 2;
        let capacity =
            32 + kids.iter().map(String::len).sum::<usize>() + per_entry * self.entries.len();
        let mut out = Zeroizing::new(String::with_capacity(capacity));
        out.push_str("{\"keys\":[");
        for (i, (entry, kid)) in self.entries.iter().zip(&kids).enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str("  {\"kid\":");
            out.push_str(kid);
            out.push_str(",\"key\":\"");
            for byte in entry.key.secret().iter() {
                out.push(hex_digit(byte >> 4));
                out.push(hex_digit(byte & 0xf));
            }
            out.push_str("\",\"retired\":");
            out.push_str(if entry.retired { "true" } else { "false" });
            out.push('}');
        }
        out.push_str("\n]}\n");
        debug_assert!(out.len() <= capacity, "to_json reallocated");
        out
    }

    /// Add a new active (minting) key built from caller-supplied random bytes. The ring never
    /// generates randomness itself.
    pub fn generate_entry(
        &mut self,
        kid: impl Into<String>,
        key_bytes: [u8; ROOT_KEY_BYTES],
    ) -> Result<(), CapError> {
        let key = RootKey::new(kid, key_bytes)?;
        self.insert(key, false)
    }

    /// Add `key` at the end (file order). Rejects an empty or duplicate kid and a full ring.
    pub fn insert(&mut self, key: RootKey, retired: bool) -> Result<(), CapError> {
        check_kid(&key.kid).map_err(CapError::KeyFile)?;
        if key.kid.is_empty() {
            return Err(CapError::KeyFile("a key ring kid must not be empty".into()));
        }
        if self.get(&key.kid).is_some() {
            return Err(CapError::KeyFile(format!("duplicate kid {:?}", key.kid)));
        }
        if self.entries.len() >= KEY_RING_KEYS_MAX {
            return Err(CapError::KeyFile(format!(
                "a key ring holds at most {KEY_RING_KEYS_MAX} keys"
            )));
        }
        self.entries.push(Entry { key, retired });
        Ok(())
    }

    /// Mark `kid` retired (it keeps verifying, stops minting). Unknown kid: `UnknownKid`.
    pub fn retire(&mut self, kid: &str) -> Result<(), CapError> {
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.key.kid == kid)
            .ok_or(CapError::UnknownKid)?;
        entry.retired = true;
        Ok(())
    }

    /// Remove `kid`; every token it minted stops verifying. Unknown kid: `UnknownKid`.
    pub fn remove(&mut self, kid: &str) -> Result<(), CapError> {
        let before = self.entries.len();
        self.entries.retain(|e| e.key.kid != kid);
        if self.entries.len() == before {
            return Err(CapError::UnknownKid);
        }
        Ok(())
    }

    /// The key named `kid`, retired or not.
    pub fn get(&self, kid: &str) -> Option<&RootKey> {
        self.entries
            .iter()
            .find(|e| e.key.kid == kid)
            .map(|e| &e.key)
    }

    /// The key new tokens are minted with: the last non-retired key in file order.
    pub fn minting_key(&self) -> Option<&RootKey> {
        self.entries
            .iter()
            .rev()
            .find(|e| !e.retired)
            .map(|e| &e.key)
    }

    /// Every kid in file order with its `retired` flag.
    pub fn kids(&self) -> Vec<(String, bool)> {
        self.entries
            .iter()
            .map(|e| (e.key.kid.clone(), e.retired))
            .collect()
    }

    /// Every key, retired or not, in file order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &RootKey> {
        self.entries.iter().map(|e| &e.key)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    keys: Vec<KeyFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileEntry {
    kid: String,
    key: SecretHex,
    #[serde(default)]
    retired: bool,
}

/// A secret read from 64 hex digits without an intermediate `String` (boxed: the entries'
/// vector may grow while parsing, and must move pointers, not secrets).
struct SecretHex(Box<Zeroizing<[u8; ROOT_KEY_BYTES]>>);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = SecretHex;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key of 64 hex digits")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretHex, E> {
                // The error never repeats the text: it may be a (slightly wrong) secret.
                let bytes = text.as_bytes();
                if bytes.len() != 2 * ROOT_KEY_BYTES {
                    return Err(E::custom(format!(
                        "key is {} characters; expected 64 hex digits",
                        text.chars().count()
                    )));
                }
                let mut out = Box::new(Zeroizing::new([0u8; ROOT_KEY_BYTES]));
                for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    match (hex_value(pair[0]), hex_value(pair[1])) {
                        (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
                        _ => return Err(E::custom("key is not 64 hex digits")),
                    }
                }
                Ok(SecretHex(out))
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0xf)])
}
