//! Capabilities: bearer tokens that authorize writes and admin calls, built as a chain of keyed
//! BLAKE3 MACs (macaroon style) so that anyone holding a token can add restrictions offline
//! ([`Token::attenuate`]) but nobody can remove one. Specified in `docs/CAPABILITIES.md`.
//!
//! Pure: no I/O, no clock (the caller passes `now_secs`), no randomness (the caller passes the
//! token id and key bytes).
//!
//! Text form: `rlcap1.` followed by base64url (no padding) of the binary form; all integers
//! big-endian:
//!
//! ```text
//! version u8 = 1 | kid_len u8 (0..=64) | kid utf8 | id [u8; 16] | issued_at u64 (unix secs)
//! | caveat_count u8 (<= 32) | caveats: (tag u8 | len u16 | value) * n | mac [u8; 32]
//! ```
//!
//! MAC chain: `m0 = keyed_blake3(root_key, "ron-ledger/cap/v1" || kid_len || kid || id ||
//! issued_at)`, `m_i = keyed_blake3(m_{i-1}, caveat_i)`, and the token carries `m_n`.
//!
//! ```
//! use ledger::capability::{Caveat, KeyRing, Op, RootKey, Token, VerifyContext};
//!
//! let mut ring = KeyRing::new();
//! ring.generate_entry("k1", [7u8; 32]).unwrap();
//! let key = ring.minting_key().unwrap();
//! let token = Token::mint(key, [1u8; 16], 1_000, vec![
//!     Caveat::ExpiresAt(1_000 + 3_600),
//!     Caveat::Audience("prod".into()),
//! ]).unwrap();
//! // The holder narrows it offline before handing it to a batch job.
//! let narrow = token.attenuate(vec!["ops=transfers.create".parse().unwrap()]).unwrap();
//!
//! let text = narrow.encode();
//! let ctx = VerifyContext { now_secs: 1_200, audience: "prod", max_lifetime_secs: 86_400,
//!                           require_kid: true };
//! let grant = Token::decode(&text).unwrap().verify(&ring, &ctx).unwrap();
//! grant.allow_op(Op::CreateTransfers).unwrap();
//! assert!(grant.allow_op(Op::CreateAccounts).is_err());
//! ```

mod caveat;
mod keys;

use std::collections::BTreeSet;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

pub use caveat::{Caveat, Op, AUDIENCE_BYTES_MAX, DEBIT_ACCOUNTS_MAX};
pub use keys::{KeyRing, RootKey, KEY_RING_KEYS_MAX, KID_BYTES_MAX, ROOT_KEY_BYTES};

use caveat::CAVEAT_HEADER_BYTES;
use keys::check_kid;

/// Start of every token's text form.
pub const TOKEN_PREFIX: &str = "rlcap1.";
/// Longest token text accepted (bytes), checked before any decoding. Mint and attenuate refuse
/// to build a token whose text would be longer.
pub const TOKEN_TEXT_MAX: usize = 4096;
/// Default cap on `min(ExpiresAt) - issued_at`: 30 days.
pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Binary format version.
pub const TOKEN_VERSION: u8 = 1;
/// Most caveats one token carries.
pub const CAVEATS_MAX: usize = 32;
/// How far in the future `issued_at` may be (clock skew between minter and node).
pub const ISSUED_AT_SKEW_SECS_MAX: u64 = 300;
/// Domain separator at the start of the first MAC's input.
pub const MAC_DOMAIN: &[u8] = b"ron-ledger/cap/v1";

const ID_BYTES: usize = 16;
const MAC_BYTES: usize = 32;

/// Why a token did not decode or verify, or a request is outside what it grants. Messages
/// never contain key, token or MAC bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Token text longer than [`TOKEN_TEXT_MAX`].
    #[error("capability text is longer than {TOKEN_TEXT_MAX} bytes")]
    TooLarge,
    /// Not a well-formed token (prefix, base64, lengths, caveat values, trailing bytes), or a
    /// caveat / kid built in code is out of bounds.
    #[error("malformed capability: {0}")]
    Malformed(String),
    /// A binary version this build does not read.
    #[error("unsupported capability version {0}")]
    UnsupportedVersion(u8),
    /// The token's kid is not in the key ring.
    #[error("capability signed by an unknown key id")]
    UnknownKid,
    /// The token has no kid and the verifier requires one.
    #[error("capability has no key id")]
    MissingKid,
    /// The MAC does not match (forged, altered or minted with another key).
    #[error("capability MAC does not verify")]
    BadMac,
    /// The token carries a caveat this build does not understand.
    #[error("capability carries unknown caveat tag {0}")]
    UnknownCaveat(u8),
    /// An audience caveat names another cluster.
    #[error("capability is for another cluster")]
    WrongAudience,
    /// No expiry caveat.
    #[error("capability has no expiry")]
    MissingExpiry,
    /// The expiry is further from `issued_at` than the verifier allows.
    #[error("capability lifetime exceeds the allowed maximum")]
    LifetimeTooLong,
    /// Now is at or after the expiry.
    #[error("capability expired")]
    Expired,
    /// Now is before a not-before caveat, or `issued_at` is in the future.
    #[error("capability not yet valid")]
    NotYetValid,
    /// The capability does not allow this operation.
    #[error("capability does not allow {0}")]
    OpDenied(Op),
    /// The capability does not allow debiting this account.
    #[error("capability does not allow debiting account {0}")]
    DebitDenied(u128),
    /// The capability does not allow this ledger.
    #[error("capability does not allow ledger {0}")]
    LedgerDenied(u32),
    /// The transfer amount is over the capability's cap.
    #[error("amount {amount} is over the capability's cap of {max}")]
    AmountOverCap {
        /// The transfer's amount.
        amount: u128,
        /// The tightest `MaxAmount` caveat.
        max: u128,
    },
    /// A key file or root key is invalid (never contains key bytes).
    #[error("key file: {0}")]
    KeyFile(String),
}

impl CapError {
    /// The HTTP `error.reason` and `rejected_total{reason}` label for this error.
    /// A [`CapError::KeyFile`] is a configuration error, never a request's fault: `internal`.
    pub fn reason(&self) -> &'static str {
        match self {
            CapError::TooLarge
            | CapError::Malformed(_)
            | CapError::UnsupportedVersion(_)
            | CapError::UnknownKid
            | CapError::MissingKid
            | CapError::BadMac
            | CapError::UnknownCaveat(_)
            | CapError::WrongAudience
            | CapError::MissingExpiry
            | CapError::LifetimeTooLong => "cap_invalid",
            CapError::Expired => "cap_expired",
            CapError::NotYetValid => "cap_not_yet_valid",
            CapError::OpDenied(_)
            | CapError::DebitDenied(_)
            | CapError::LedgerDenied(_)
            | CapError::AmountOverCap { .. } => "policy_denied",
            CapError::KeyFile(_) => "internal",
        }
    }
}

/// A capability: who minted it (`kid`), its revocation handle (`id`), when, its caveats, and
/// the MAC chain over all of them. `Debug` never shows the MAC (a token is a bearer secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Key id of the root key that minted it (may be empty: see [`VerifyContext::require_kid`]).
    pub kid: String,
    /// Unique id chosen by the minter; its hex ([`Token::id_hex`]) is the revocation handle.
    pub id: [u8; ID_BYTES],
    /// When it was minted (unix seconds).
    pub issued_at: u64,
    /// The restrictions, in order (the MAC chain covers the order).
    pub caveats: Vec<Caveat>,
    mac: [u8; MAC_BYTES],
}

/// What a verifier checks a token against.
#[derive(Clone, Copy, Debug)]
pub struct VerifyContext<'a> {
    /// The verifier's clock (unix seconds).
    pub now_secs: u64,
    /// This cluster's id; every `Audience` caveat must equal it.
    pub audience: &'a str,
    /// Longest allowed `min(ExpiresAt) - issued_at`.
    pub max_lifetime_secs: u64,
    /// Refuse tokens without a kid. When false, a kid-less token is tried against every key.
    pub require_kid: bool,
}

/// A token's human-readable contents (for `ronctl` and logs): never the MAC or key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// Key id.
    pub kid: String,
    /// Token id, 32 hex digits.
    pub id: String,
    /// Mint time (unix seconds).
    pub issued_at: u64,
    /// Each caveat in its command-line form.
    pub caveats: Vec<String>,
}

impl Token {
    /// Mint a token with `key`. `id` should be random (it is the revocation handle); the
    /// caveats are checked (bounds, at most [`CAVEATS_MAX`], text at most [`TOKEN_TEXT_MAX`]).
    /// An expiry is not required here, but verification refuses a token without one.
    pub fn mint(
        key: &RootKey,
        id: [u8; ID_BYTES],
        issued_at: u64,
        caveats: Vec<Caveat>,
    ) -> Result<Token, CapError> {
        let first = first_mac(key, key.kid(), &id, issued_at);
        let mac = chain(first, &caveats);
        let token = Token {
            kid: key.kid().to_owned(),
            id,
            issued_at,
            caveats,
            mac: *mac.as_bytes(),
        };
        token.check_bounds()?;
        Ok(token)
    }

    /// Add caveats without any key: the new MAC continues the chain from this token's MAC.
    /// The result is never broader than `self`.
    pub fn attenuate(&self, extra: Vec<Caveat>) -> Result<Token, CapError> {
        let mac = chain(blake3::Hash::from(self.mac), &extra);
        let mut caveats = Vec::with_capacity(self.caveats.len().saturating_add(extra.len()));
        caveats.extend_from_slice(&self.caveats);
        caveats.extend(extra);
        let token = Token {
            kid: self.kid.clone(),
            id: self.id,
            issued_at: self.issued_at,
            caveats,
            mac: *mac.as_bytes(),
        };
        token.check_bounds()?;
        Ok(token)
    }

    /// The text form, `rlcap1.<base64url>`.
    pub fn encode(&self) -> String {
        let binary = self.to_binary();
        let mut out = String::with_capacity(TOKEN_PREFIX.len() + binary.len().div_ceil(3) * 4);
        out.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&binary, &mut out);
        out
    }

    /// Parse the text form. Total: any input gives a token or an error, never a panic, and
    /// allocation is bounded by the input's length (itself at most [`TOKEN_TEXT_MAX`]).
    /// This checks the format only; [`Token::verify`] checks the MAC and the caveats.
    pub fn decode(text: &str) -> Result<Token, CapError> {
        if text.len() > TOKEN_TEXT_MAX {
            return Err(CapError::TooLarge);
        }
        let body = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| CapError::Malformed(format!("does not start with {TOKEN_PREFIX}")))?;
        let binary = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CapError::Malformed("not base64url without padding".into()))?;
        Token::from_binary(&binary)
    }

    /// The id as 32 lower-case hex digits: the handle to revoke this token (and every token
    /// attenuated from it).
    pub fn id_hex(&self) -> String {
        crate::wire::hex::encode(&self.id)
    }

    /// The human-readable contents; never the MAC.
    pub fn inspect(&self) -> Inspection {
        Inspection {
            kid: self.kid.clone(),
            id: self.id_hex(),
            issued_at: self.issued_at,
            caveats: self.caveats.iter().map(Caveat::to_string).collect(),
        }
    }

    /// Check the MAC and every caveat that does not depend on the request, in this order:
    /// kid (known; or, when `!require_kid` and the kid is empty, any key whose MAC matches),
    /// MAC, no unknown caveat, audience, expiry present and lifetime within the cap, expiry,
    /// not-before, `issued_at` at most [`ISSUED_AT_SKEW_SECS_MAX`] in the future. Returns the
    /// [`Grant`] the request-dependent caveats reduce to.
    pub fn verify(&self, keys: &KeyRing, ctx: &VerifyContext<'_>) -> Result<Grant, CapError> {
        let mac_ok = if self.kid.is_empty() {
            if ctx.require_kid {
                return Err(CapError::MissingKid);
            }
            keys.keys().any(|key| self.mac_matches(key))
        } else {
            let key = keys.get(&self.kid).ok_or(CapError::UnknownKid)?;
            self.mac_matches(key)
        };
        if !mac_ok {
            return Err(CapError::BadMac);
        }
        if let Some(tag) = self.caveats.iter().find_map(|c| match c {
            Caveat::Unknown { tag, .. } => Some(*tag),
            _ => None,
        }) {
            return Err(CapError::UnknownCaveat(tag));
        }

        let mut grant = Grant {
            kid: self.kid.clone(),
            id: self.id,
            ops: None,
            debit: None,
            ledger: LedgerRule::Any,
            max_amount: None,
        };
        let mut expires_at: Option<u64> = None;
        let mut not_before: Option<u64> = None;
        for caveat in &self.caveats {
            match caveat {
                Caveat::ExpiresAt(secs) => {
                    expires_at = Some(expires_at.map_or(*secs, |e| e.min(*secs)))
                }
                Caveat::NotBefore(secs) => {
                    not_before = Some(not_before.map_or(*secs, |n| n.max(*secs)))
                }
                Caveat::Audience(audience) => {
                    if audience != ctx.audience {
                        return Err(CapError::WrongAudience);
                    }
                }
                Caveat::Ops(ops) => {
                    grant.ops = Some(match grant.ops.take() {
                        None => ops.clone(),
                        Some(have) => have.intersection(ops).copied().collect(),
                    })
                }
                Caveat::DebitAccounts(ids) => {
                    grant.debit = Some(match grant.debit.take() {
                        None => ids.clone(),
                        Some(have) => have.intersection(ids).copied().collect(),
                    })
                }
                Caveat::Ledger(ledger) => {
                    grant.ledger = match grant.ledger {
                        LedgerRule::Any => LedgerRule::Only(*ledger),
                        LedgerRule::Only(have) if have == *ledger => LedgerRule::Only(have),
                        LedgerRule::Only(_) | LedgerRule::Nothing => LedgerRule::Nothing,
                    }
                }
                Caveat::MaxAmount(max) => {
                    grant.max_amount = Some(grant.max_amount.map_or(*max, |m| m.min(*max)))
                }
                Caveat::Unknown { .. } => {} // refused above
            }
        }
        let expires_at = expires_at.ok_or(CapError::MissingExpiry)?;
        if expires_at.saturating_sub(self.issued_at) > ctx.max_lifetime_secs {
            return Err(CapError::LifetimeTooLong);
        }
        if ctx.now_secs >= expires_at {
            return Err(CapError::Expired);
        }
        if not_before.is_some_and(|n| ctx.now_secs < n) {
            return Err(CapError::NotYetValid);
        }
        if self.issued_at > ctx.now_secs.saturating_add(ISSUED_AT_SKEW_SECS_MAX) {
            return Err(CapError::NotYetValid);
        }
        Ok(grant)
    }

    fn mac_matches(&self, key: &RootKey) -> bool {
        let expected = chain(
            first_mac(key, &self.kid, &self.id, self.issued_at),
            &self.caveats,
        );
        // blake3::Hash's PartialEq is constant-time.
        expected == blake3::Hash::from(self.mac)
    }

    /// Length of the binary form.
    fn binary_bytes(&self) -> usize {
        let caveats: usize = self.caveats.iter().map(Caveat::encoded_bytes).sum();
        2 + self.kid.len() + ID_BYTES + 8 + 1 + caveats + MAC_BYTES
    }

    /// Bounds a token built in code must meet for its encoding to decode back to it.
    fn check_bounds(&self) -> Result<(), CapError> {
        check_kid(&self.kid).map_err(CapError::Malformed)?;
        if self.caveats.len() > CAVEATS_MAX {
            return Err(CapError::Malformed(format!(
                "{} caveats; at most {CAVEATS_MAX}",
                self.caveats.len()
            )));
        }
        for caveat in &self.caveats {
            caveat.check()?;
        }
        let text_bytes = TOKEN_PREFIX.len() + (self.binary_bytes() * 4).div_ceil(3);
        if text_bytes > TOKEN_TEXT_MAX {
            return Err(CapError::TooLarge);
        }
        Ok(())
    }

    fn to_binary(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.binary_bytes());
        out.push(TOKEN_VERSION);
        // In bounds for every token from mint/attenuate/decode; a kid edited by hand past the
        // bound is written saturated (and then fails to decode) rather than panicking.
        out.push(u8::try_from(self.kid.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.kid.as_bytes());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.push(u8::try_from(self.caveats.len()).unwrap_or(u8::MAX));
        for caveat in &self.caveats {
            caveat.encode_into(&mut out);
        }
        out.extend_from_slice(&self.mac);
        out
    }

    fn from_binary(bytes: &[u8]) -> Result<Token, CapError> {
        let mut reader = Reader { rest: bytes };
        let version = reader.u8("version")?;
        if version != TOKEN_VERSION {
            return Err(CapError::UnsupportedVersion(version));
        }
        let kid_len = usize::from(reader.u8("kid length")?);
        if kid_len > KID_BYTES_MAX {
            return Err(CapError::Malformed(format!(
                "kid is {kid_len} bytes; at most {KID_BYTES_MAX}"
            )));
        }
        let kid = std::str::from_utf8(reader.take(kid_len, "kid")?)
            .map_err(|_| CapError::Malformed("kid is not UTF-8".into()))?;
        check_kid(kid).map_err(CapError::Malformed)?;
        let id = reader.array::<ID_BYTES>("id")?;
        let issued_at = u64::from_be_bytes(reader.array("issued_at")?);
        let count = usize::from(reader.u8("caveat count")?);
        if count > CAVEATS_MAX {
            return Err(CapError::Malformed(format!(
                "{count} caveats; at most {CAVEATS_MAX}"
            )));
        }
        let mut caveats = Vec::with_capacity(count);
        for _ in 0..count {
            let tag = reader.u8("caveat tag")?;
            let len = usize::from(u16::from_be_bytes(reader.array("caveat length")?));
            let value = reader.take(len, "caveat value")?;
            caveats.push(Caveat::parse(tag, value)?);
        }
        let mac = reader.array::<MAC_BYTES>("mac")?;
        if !reader.rest.is_empty() {
            return Err(CapError::Malformed(format!(
                "{} trailing bytes after the mac",
                reader.rest.len()
            )));
        }
        Ok(Token {
            kid: kid.to_owned(),
            id,
            issued_at,
            caveats,
            mac,
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("kid", &self.kid)
            .field("id", &self.id_hex())
            .field("issued_at", &self.issued_at)
            .field("caveats", &self.caveats)
            .finish_non_exhaustive()
    }
}

/// `m0`: the root key over the domain separator and the token's header.
fn first_mac(key: &RootKey, kid: &str, id: &[u8; ID_BYTES], issued_at: u64) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(key.secret());
    hasher.update(MAC_DOMAIN);
    hasher.update(&[u8::try_from(kid.len()).unwrap_or(u8::MAX)]);
    hasher.update(kid.as_bytes());
    hasher.update(id);
    hasher.update(&issued_at.to_be_bytes());
    hasher.finalize()
}

/// Extend the chain by each caveat: `m_i = keyed_blake3(m_{i-1}, caveat_i)`.
fn chain(mut mac: blake3::Hash, caveats: &[Caveat]) -> blake3::Hash {
    let mut buf = Vec::with_capacity(CAVEAT_HEADER_BYTES + 64);
    for caveat in caveats {
        buf.clear();
        caveat.encode_into(&mut buf);
        mac = blake3::keyed_hash(mac.as_bytes(), &buf);
    }
    mac
}

/// A bounds-checked cursor: every read checks the length before slicing.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CapError> {
        if self.rest.len() < n {
            return Err(CapError::Malformed(format!("truncated in {what}")));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, CapError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], CapError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
}

/// Which ledger a grant allows: any, one, or none (two `Ledger` caveats that disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LedgerRule {
    Any,
    Only(u32),
    Nothing,
}

/// What a verified token allows; the node checks each request against it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Key id the token was minted under.
    pub kid: String,
    /// Token id (revocation handle).
    pub id: [u8; ID_BYTES],
    ops: Option<BTreeSet<Op>>,
    debit: Option<BTreeSet<u128>>,
    ledger: LedgerRule,
    max_amount: Option<u128>,
}

/// Bytes of a token id that name its holder ([`holder_token_id`]).
pub const HOLDER_TAG_BYTES: usize = 8;

/// A token id that names `holder`: the first [`HOLDER_TAG_BYTES`] bytes are BLAKE3 of the name
/// (domain-separated), the rest `random`. The id is fixed when the token is minted and kept by
/// every attenuation, so a holder can neither make a second id nor take another holder's;
/// dual control compares these tags ([`Grant::holder_tag`]).
pub fn holder_token_id(holder: &str, random: [u8; ID_BYTES - HOLDER_TAG_BYTES]) -> [u8; ID_BYTES] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"ron-ledger capability holder v1\0");
    hasher.update(holder.as_bytes());
    let tag = hasher.finalize();
    let mut id = [0u8; ID_BYTES];
    id[..HOLDER_TAG_BYTES].copy_from_slice(&tag.as_bytes()[..HOLDER_TAG_BYTES]);
    id[HOLDER_TAG_BYTES..].copy_from_slice(&random);
    id
}

impl Grant {
    /// The holder the token's id names ([`holder_token_id`]): two tokens of one holder have the
    /// same tag. (A token minted without a holder has a random tag of its own.)
    pub fn holder_tag(&self) -> [u8; HOLDER_TAG_BYTES] {
        let mut tag = [0u8; HOLDER_TAG_BYTES];
        tag.copy_from_slice(&self.id[..HOLDER_TAG_BYTES]);
        tag
    }

    /// Whether the token allows `op`. `Admin` and `Reverse` need an explicit `Ops` caveat
    /// naming them; the other ops are allowed when the token has no `Ops` caveat.
    pub fn allow_op(&self, op: Op) -> Result<(), CapError> {
        let allowed = match &self.ops {
            Some(ops) => ops.contains(&op),
            None => !op.explicit_only(),
        };
        if allowed {
            Ok(())
        } else {
            Err(CapError::OpDenied(op))
        }
    }

    /// Whether the token allows creating an account in `ledger` (the caller checks
    /// [`Op::CreateAccounts`] with [`Grant::allow_op`] once per request).
    pub fn allow_account(&self, ledger: u32) -> Result<(), CapError> {
        self.allow_ledger(ledger)
    }

    /// Whether the token allows a transfer debiting `debit_account` in `ledger` of `amount`
    /// (the caller checks [`Op::CreateTransfers`] with [`Grant::allow_op`] once per request).
    pub fn allow_transfer(
        &self,
        debit_account: u128,
        ledger: u32,
        amount: u128,
    ) -> Result<(), CapError> {
        if let Some(ids) = &self.debit {
            if !ids.contains(&debit_account) {
                return Err(CapError::DebitDenied(debit_account));
            }
        }
        self.allow_ledger(ledger)?;
        if let Some(max) = self.max_amount {
            if amount > max {
                return Err(CapError::AmountOverCap { amount, max });
            }
        }
        Ok(())
    }

    fn allow_ledger(&self, ledger: u32) -> Result<(), CapError> {
        match self.ledger {
            LedgerRule::Any => Ok(()),
            LedgerRule::Only(only) if only == ledger => Ok(()),
            LedgerRule::Only(_) | LedgerRule::Nothing => Err(CapError::LedgerDenied(ledger)),
        }
    }
}
