//! The capability revocation deny-list: what a Raft entry carries ([`Command`]), what applying an
//! admin command decides ([`plan`]), and what the state machine answers ([`Response`]).
//!
//! Revocations are replicated state like the ledger tables — committed through Raft, applied on
//! every node at the same log index, stored durably, carried in snapshots and covered by the state
//! digest — but they are **not** leaves of the Merkle tree: the ledger crate's apply and tree are
//! untouched, and a revocation never changes the ledger root or tree size.
//!
//! Apply is a deterministic function of the entry and the stored deny-list: no clock (the
//! leader chose `revoked_at` when it proposed), no randomness, and an invalid command is a no-op
//! answered with [`AdminOutcome::Invalid`], never a panic or a storage error.
//!
//! ```
//! use raft_store::revocation::{parse_token_id, token_id_hex};
//! let id = parse_token_id("00112233445566778899aabbccddeeff").unwrap();
//! assert_eq!(token_id_hex(&id), "00112233445566778899aabbccddeeff");
//! ```

use crate::error::StoreError;
use ledger::merkle::Hash;
use ledger::{Batch, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A capability token id (the revocation handle).
pub type TokenId = [u8; 16];
/// Most revocations one admin command may carry.
pub const REVOCATIONS_PER_COMMAND_MAX: usize = 1000;
/// Longest key id, in characters (the capability format allows 64 bytes).
pub const KID_CHARS_MAX: usize = 64;
/// Longest reason, in characters.
pub const REASON_CHARS_MAX: usize = 200;
/// Most records one [`crate::StateBackend::revocations`] page should be asked for.
pub const REVOCATIONS_PAGE_MAX: usize = 1000;

/// The payload of a normal Raft entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A sequenced batch of ledger operations (`ledger::apply`).
    Ledger(Batch),
    /// A cluster administration command.
    Admin(AdminCommand),
}

/// A cluster administration command, applied by raft-store (not by the ledger crate).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminCommand {
    /// Add tokens to the deny-list (1..=[`REVOCATIONS_PER_COMMAND_MAX`]).
    Revoke(#[serde(deserialize_with = "bounded::list")] Vec<Revocation>),
    /// Raise the cluster's effective version ([`crate::cluster_version`]). Proposed by the
    /// leader only once every member runs it: a node of an earlier release cannot decode it.
    SetClusterVersion(u32),
}

/// One token to revoke, as proposed by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The token's id.
    pub token_id: TokenId,
    /// The key id the token was minted under (at most [`KID_CHARS_MAX`] characters).
    #[serde(deserialize_with = "bounded::kid")]
    pub kid: String,
    /// Why (at most [`REASON_CHARS_MAX`] printable characters).
    #[serde(deserialize_with = "bounded::reason")]
    pub reason: String,
    /// The leader's cluster time when it proposed the revocation (ns since the Unix epoch).
    pub revoked_at: u64,
}

/// A revocation as stored: the first one applied for its token id, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// The token's id.
    pub token_id: TokenId,
    /// The key id the token was minted under.
    pub kid: String,
    /// Why.
    pub reason: String,
    /// The leader's cluster time at proposal (ns).
    pub revoked_at: u64,
    /// The log index of the entry that applied it.
    pub log_index: u64,
}

/// What the state machine answers for one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// For a ledger batch, membership or blank entry: the ledger outcome.
    Ledger(Outcome),
    /// For an admin command.
    Admin(AdminOutcome),
}

/// The result of one admin command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOutcome {
    /// Applied: one result per revocation, in command order.
    Revoked(Vec<RevokeResult>),
    /// The command broke a bound and changed nothing (the text says which).
    Invalid(String),
    /// The cluster's effective version is now this.
    ClusterVersion(u32),
}

/// What applying an admin command writes: new deny-list records, or a new cluster version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminWrite {
    /// New deny-list records (only new token ids).
    pub records: Vec<RevocationRecord>,
    /// The new effective cluster version, if the command raised it.
    pub cluster_version: Option<u32>,
}

/// The result of one revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokeResult {
    /// Newly revoked.
    Ok,
    /// Already revoked (earlier, or earlier in the same command); the first record is kept.
    Exists,
}

impl RevokeResult {
    /// The wire name: `ok` or `exists`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeResult::Ok => "ok",
            RevokeResult::Exists => "exists",
        }
    }
}

/// Why an admin command or a revocation is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No revocation in the command.
    #[error("a revoke command needs at least one revocation")]
    Empty,
    /// Too many revocations in one command. (No count: a decoded entry keeps at most one more
    /// than the bound, and every node must give the same answer.)
    #[error("more than {REVOCATIONS_PER_COMMAND_MAX} revocations in one command")]
    TooMany,
    /// The key id is too long or holds control characters.
    #[error("kid must be at most {KID_CHARS_MAX} printable characters")]
    BadKid,
    /// The reason is too long or holds control characters.
    #[error("reason must be at most {REASON_CHARS_MAX} printable characters")]
    BadReason,
    /// A token id that is not 32 hex digits.
    #[error("token_id must be 32 hex digits")]
    BadTokenId,
}

fn printable(text: &str, chars_max: usize) -> bool {
    text.chars().count() <= chars_max && !text.chars().any(char::is_control)
}

impl Revocation {
    /// Check the field bounds.
    pub fn check(&self) -> Result<(), AdminError> {
        if !printable(&self.kid, KID_CHARS_MAX) {
            return Err(AdminError::BadKid);
        }
        if !printable(&self.reason, REASON_CHARS_MAX) {
            return Err(AdminError::BadReason);
        }
        Ok(())
    }
}

impl AdminCommand {
    /// Check the command's bounds (count, then every field).
    pub fn check(&self) -> Result<(), AdminError> {
        match self {
            AdminCommand::Revoke(list) => {
                if list.is_empty() {
                    return Err(AdminError::Empty);
                }
                if list.len() > REVOCATIONS_PER_COMMAND_MAX {
                    return Err(AdminError::TooMany);
                }
                list.iter().try_for_each(Revocation::check)
            }
            AdminCommand::SetClusterVersion(_) => Ok(()),
        }
    }
}

impl RevocationRecord {
    /// The token id as 32 lowercase hex digits.
    pub fn token_id_hex(&self) -> String {
        token_id_hex(&self.token_id)
    }
}

/// Decide what an admin command does against the stored deny-list (`lookup`) and the current
/// cluster version, at `log_index`: the outcome, and what to write (only new token ids — the
/// first record of an id is kept — or the new version). Pure apart from `lookup`; an invalid
/// command writes nothing. A version this build cannot run is an error (see
/// [`crate::cluster_version::plan_advance`]).
pub fn plan(
    cmd: &AdminCommand,
    log_index: u64,
    cluster_version: u32,
    mut lookup: impl FnMut(&TokenId) -> Result<Option<RevocationRecord>, StoreError>,
) -> Result<(AdminOutcome, AdminWrite), StoreError> {
    if let Err(e) = cmd.check() {
        return Ok((AdminOutcome::Invalid(e.to_string()), AdminWrite::default()));
    }
    let list = match cmd {
        AdminCommand::Revoke(list) => list,
        AdminCommand::SetClusterVersion(target) => {
            return Ok(
                match crate::cluster_version::plan_advance(cluster_version, *target)? {
                    Ok(v) => (
                        AdminOutcome::ClusterVersion(v),
                        AdminWrite {
                            records: Vec::new(),
                            cluster_version: Some(v),
                        },
                    ),
                    Err(why) => (AdminOutcome::Invalid(why), AdminWrite::default()),
                },
            )
        }
    };
    let mut seen = BTreeSet::new();
    let mut results = Vec::with_capacity(list.len());
    let mut records = Vec::new();
    for r in list {
        if !seen.insert(r.token_id) || lookup(&r.token_id)?.is_some() {
            results.push(RevokeResult::Exists);
            continue;
        }
        results.push(RevokeResult::Ok);
        records.push(RevocationRecord {
            token_id: r.token_id,
            kid: r.kid.clone(),
            reason: r.reason.clone(),
            revoked_at: r.revoked_at,
            log_index,
        });
    }
    Ok((
        AdminOutcome::Revoked(results),
        AdminWrite {
            records,
            cluster_version: None,
        },
    ))
}

/// The digest of the whole replicated state: the ledger digest alone when the deny-list is empty
/// (so a ledger that never revoked anything keeps `ledger::digest`'s value), else the ledger
/// digest and every record, fed in token id order.
pub fn combine_digest<'a>(
    ledger: Hash,
    records: impl IntoIterator<Item = &'a RevocationRecord>,
) -> Hash {
    let mut records = records.into_iter().peekable();
    if records.peek().is_none() {
        return ledger;
    }
    let mut h = blake3::Hasher::new();
    h.update(b"ron-ledger/state-digest+revoked/v1");
    h.update(&ledger.0);
    for r in records {
        h.update(&r.token_id);
        h.update(&(r.kid.len() as u64).to_le_bytes());
        h.update(r.kid.as_bytes());
        h.update(&(r.reason.len() as u64).to_le_bytes());
        h.update(r.reason.as_bytes());
        h.update(&r.revoked_at.to_le_bytes());
        h.update(&r.log_index.to_le_bytes());
    }
    Hash(*h.finalize().as_bytes())
}

/// Check a deny-list read from a snapshot: every record within bounds, ids strictly increasing.
pub(crate) fn check_snapshot_list(records: &[RevocationRecord]) -> Result<(), StoreError> {
    let mut previous: Option<&TokenId> = None;
    for r in records {
        if previous.is_some_and(|p| p >= &r.token_id) {
            return Err(StoreError::Snapshot(format!(
                "revocation {} out of order",
                r.token_id_hex()
            )));
        }
        if !printable(&r.kid, KID_CHARS_MAX) || !printable(&r.reason, REASON_CHARS_MAX) {
            return Err(StoreError::Snapshot(format!(
                "revocation {} out of bounds",
                r.token_id_hex()
            )));
        }
        previous = Some(&r.token_id);
    }
    Ok(())
}

/// Decoding that never holds more than a bound: a log entry is decoded on every node, so a bad
/// one must cost bounded memory and still decode (then apply as an invalid no-op) rather than
/// stop the cluster. Values over a bound keep exactly one extra element or character, so
/// [`AdminCommand::check`] still refuses them; the rest is read and dropped. (The codec's byte
/// limit bounds the input as a whole.)
mod bounded {
    use super::{Revocation, KID_CHARS_MAX, REASON_CHARS_MAX, REVOCATIONS_PER_COMMAND_MAX};
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use std::fmt;

    struct List;

    impl<'de> Visitor<'de> for List {
        type Value = Vec<Revocation>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of revocations")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let keep = REVOCATIONS_PER_COMMAND_MAX + 1;
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(keep));
            while let Some(r) = seq.next_element::<Revocation>()? {
                if out.len() < keep {
                    out.push(r);
                }
            }
            Ok(out)
        }
    }

    pub(super) fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Revocation>, D::Error> {
        d.deserialize_seq(List)
    }

    struct Text(usize);

    impl Visitor<'_> for Text {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.chars().take(self.0 + 1).collect())
        }
    }

    // `deserialize_str`: bincode lends the bytes from the input instead of allocating them.
    pub(super) fn kid<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_str(Text(KID_CHARS_MAX))
    }

    pub(super) fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_str(Text(REASON_CHARS_MAX))
    }
}

/// A token id as 32 lowercase hex digits.
pub fn token_id_hex(id: &TokenId) -> String {
    crate::record::hex(id)
}

/// Parse 32 hex digits (either case) as a token id.
pub fn parse_token_id(text: &str) -> Result<TokenId, AdminError> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return Err(AdminError::BadTokenId);
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16).ok_or(AdminError::BadTokenId);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: u8, reason: &str) -> Revocation {
        Revocation {
            token_id: [id; 16],
            kid: "k1".into(),
            reason: reason.into(),
            revoked_at: 7,
        }
    }

    #[test]
    fn token_ids_round_trip_and_bad_text_is_refused() {
        let id = parse_token_id("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(token_id_hex(&id), "00112233445566778899aabbccddeeff");
        for bad in [
            "",
            "00",
            &"0".repeat(31),
            &"0".repeat(33),
            &"g".repeat(32),
            "+1",
        ] {
            assert_eq!(parse_token_id(bad), Err(AdminError::BadTokenId), "{bad:?}");
        }
        assert!(parse_token_id(&"é".repeat(16)).is_err());
    }

    #[test]
    fn invalid_commands_plan_a_no_op() {
        let cases = [
            (AdminCommand::Revoke(Vec::new()), AdminError::Empty),
            (
                AdminCommand::Revoke(vec![rev(1, "x"); REVOCATIONS_PER_COMMAND_MAX + 1]),
                AdminError::TooMany,
            ),
            (
                AdminCommand::Revoke(vec![rev(1, &"r".repeat(REASON_CHARS_MAX + 1))]),
                AdminError::BadReason,
            ),
            (
                AdminCommand::Revoke(vec![rev(1, "line\nbreak")]),
                AdminError::BadReason,
            ),
            (
                AdminCommand::Revoke(vec![Revocation {
                    kid: "k".repeat(KID_CHARS_MAX + 1),
                    ..rev(1, "x")
                }]),
                AdminError::BadKid,
            ),
        ];
        for (cmd, expected) in cases {
            let (outcome, write) = plan(&cmd, 9, 1, |_| panic!("no lookup")).unwrap();
            assert_eq!(outcome, AdminOutcome::Invalid(expected.to_string()));
            assert_eq!(write, AdminWrite::default());
        }
    }

    #[test]
    fn plan_raises_the_cluster_version_and_never_lowers_it() {
        let up = AdminCommand::SetClusterVersion(2);
        let (outcome, write) = plan(&up, 9, 1, |_| panic!("no lookup")).unwrap();
        assert_eq!(outcome, AdminOutcome::ClusterVersion(2));
        assert_eq!(write.cluster_version, Some(2));
        let (outcome, write) = plan(&up, 10, 2, |_| panic!("no lookup")).unwrap();
        assert!(matches!(outcome, AdminOutcome::Invalid(why) if why.contains("already 2")));
        assert_eq!(write, AdminWrite::default());
        let beyond = AdminCommand::SetClusterVersion(crate::CLUSTER_VERSION + 1);
        let err = plan(&beyond, 11, 2, |_| panic!("no lookup")).unwrap_err();
        assert_eq!(err.safe_mode_reason(), "version_unsupported");
    }

    #[test]
    fn plan_keeps_the_first_record_of_an_id() {
        let cmd = AdminCommand::Revoke(vec![rev(1, "a"), rev(2, "b"), rev(1, "again")]);
        let stored = RevocationRecord {
            token_id: [2; 16],
            kid: "k0".into(),
            reason: "old".into(),
            revoked_at: 1,
            log_index: 3,
        };
        let (outcome, write) = plan(&cmd, 9, 1, |id| {
            Ok((id == &stored.token_id).then(|| stored.clone()))
        })
        .unwrap();
        let records = write.records;
        assert_eq!(
            outcome,
            AdminOutcome::Revoked(vec![
                RevokeResult::Ok,
                RevokeResult::Exists,
                RevokeResult::Exists
            ])
        );
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].reason, "a");
        assert_eq!(records[0].log_index, 9);
    }

    #[test]
    fn decoding_keeps_at_most_one_element_or_char_over_a_bound() {
        use ledger::codec::{decode, encode, Kind};
        let long = rev(1, &"r".repeat(10_000));
        let mut list = vec![rev(2, "x"); REVOCATIONS_PER_COMMAND_MAX + 500];
        list.push(long);
        let cmd = Command::Admin(AdminCommand::Revoke(list));
        let back: Command = decode(Kind::LogEntry, &encode(Kind::LogEntry, &cmd)).unwrap();
        let Command::Admin(back) = back else {
            panic!("not admin")
        };
        let AdminCommand::Revoke(kept) = &back else {
            panic!("not a revocation")
        };
        assert_eq!(kept.len(), REVOCATIONS_PER_COMMAND_MAX + 1);
        assert_eq!(back.check(), Err(AdminError::TooMany));
        let one = Command::Admin(AdminCommand::Revoke(vec![rev(1, &"r".repeat(10_000))]));
        let Command::Admin(AdminCommand::Revoke(kept)) =
            decode(Kind::LogEntry, &encode(Kind::LogEntry, &one)).unwrap()
        else {
            panic!("not admin")
        };
        assert_eq!(kept[0].reason.len(), REASON_CHARS_MAX + 1);
        assert_eq!(kept[0].check(), Err(AdminError::BadReason));
        // Within bounds, decoding is exact.
        let ok = Command::Admin(AdminCommand::Revoke(vec![rev(3, "é reason")]));
        assert_eq!(
            decode::<Command>(Kind::LogEntry, &encode(Kind::LogEntry, &ok)).unwrap(),
            ok
        );
    }

    #[test]
    fn an_empty_deny_list_keeps_the_ledger_digest() {
        let ledger = Hash([5; 32]);
        assert_eq!(combine_digest(ledger, std::iter::empty()), ledger);
        let r = RevocationRecord {
            token_id: [1; 16],
            kid: String::new(),
            reason: String::new(),
            revoked_at: 0,
            log_index: 1,
        };
        assert_ne!(combine_digest(ledger, [&r]), ledger);
    }
}
