//! Caveats: the restrictions a capability carries, their binary form (`tag u8 | len u16 |
//! value`, big-endian) and their command-line form (`expires=<secs>`, `ops=admin`, ...).
//!
//! Decoding is canonical: a value has exactly one accepted encoding (sets strictly ascending,
//! fixed-width integers), so `encode(parse(bytes)) == bytes` for every accepted input and the
//! MAC over re-encoded caveats equals the MAC over the bytes that were received.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::CapError;

/// Longest [`Caveat::Audience`] value (bytes of UTF-8).
pub const AUDIENCE_BYTES_MAX: usize = 64;
/// Most account ids one [`Caveat::DebitAccounts`] names.
pub const DEBIT_ACCOUNTS_MAX: usize = 256;

const TAG_EXPIRES_AT: u8 = 1;
const TAG_NOT_BEFORE: u8 = 2;
const TAG_AUDIENCE: u8 = 3;
const TAG_OPS: u8 = 4;
const TAG_DEBIT_ACCOUNTS: u8 = 5;
const TAG_LEDGER: u8 = 6;
const TAG_MAX_AMOUNT: u8 = 7;
/// Bytes of a caveat's header: tag u8 and value length u16.
pub(super) const CAVEAT_HEADER_BYTES: usize = 3;

/// An operation a capability may allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `POST /v1/accounts`.
    #[serde(rename = "accounts.create")]
    CreateAccounts,
    /// `POST /v1/transfers`.
    #[serde(rename = "transfers.create")]
    CreateTransfers,
    /// Every `/v1/admin/*` endpoint. Only granted by an explicit [`Caveat::Ops`] naming it.
    #[serde(rename = "admin")]
    Admin,
    /// Governance: approve a reversal (`reversal` transfer). Only granted by an explicit
    /// [`Caveat::Ops`] naming it, and a reversal needs two such tokens of different holders
    /// (dual control; see `docs/CAPABILITIES.md`).
    #[serde(rename = "transfers.reverse")]
    Reverse,
}

impl Op {
    /// Every operation, in byte order.
    pub const ALL: [Op; 4] = [
        Op::CreateAccounts,
        Op::CreateTransfers,
        Op::Admin,
        Op::Reverse,
    ];

    /// Whether a token without an `Ops` caveat lacks this op: it must be named explicitly.
    pub fn explicit_only(self) -> bool {
        matches!(self, Op::Admin | Op::Reverse)
    }

    /// The name used on the command line, in JSON and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateAccounts => "accounts.create",
            Op::CreateTransfers => "transfers.create",
            Op::Admin => "admin",
            Op::Reverse => "transfers.reverse",
        }
    }

    fn byte(self) -> u8 {
        match self {
            Op::CreateAccounts => 1,
            Op::CreateTransfers => 2,
            Op::Admin => 3,
            Op::Reverse => 4,
        }
    }

    fn from_byte(byte: u8) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.byte() == byte)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = CapError;

    fn from_str(text: &str) -> Result<Op, CapError> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == text)
            .ok_or_else(|| {
                CapError::Malformed(format!(
                    "unknown op {:?} (expected accounts.create, transfers.create, transfers.reverse or admin)",
                    truncated(text)
                ))
            })
    }
}

/// One restriction in a capability. A token's caveats all apply: several of the same kind
/// intersect (ops, debit accounts), take the tightest bound (expiry, not-before, amount) or
/// must all agree (audience, ledger).
///
/// ```
/// use ledger::capability::{Caveat, Op};
///
/// let caveat: Caveat = "ops=transfers.create,admin".parse().unwrap();
/// assert_eq!(caveat, Caveat::Ops([Op::CreateTransfers, Op::Admin].into()));
/// assert_eq!(caveat.to_string(), "ops=transfers.create,admin");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caveat {
    /// Tag 1: the token is invalid at and after this time (unix seconds).
    ExpiresAt(u64),
    /// Tag 2: the token is invalid before this time (unix seconds).
    NotBefore(u64),
    /// Tag 3: the token is only valid on the cluster with this id (1..=64 bytes, printable).
    Audience(String),
    /// Tag 4: only these operations (non-empty; one byte per op, ascending).
    Ops(BTreeSet<Op>),
    /// Tag 5: transfers may only debit these accounts (1..=256 ids, 16 bytes each, ascending).
    DebitAccounts(BTreeSet<u128>),
    /// Tag 6: accounts and transfers only in this ledger.
    Ledger(u32),
    /// Tag 7: no single transfer may move more than this amount.
    MaxAmount(u128),
    /// Any other tag. It decodes (so a token from a newer release can be inspected) but
    /// verification denies it: a restriction this build does not understand is never ignored.
    Unknown {
        /// The tag byte (never 1..=7).
        tag: u8,
        /// The raw value.
        value: Vec<u8>,
    },
}

impl Caveat {
    /// The tag byte of this caveat in the binary form.
    pub fn tag(&self) -> u8 {
        match self {
            Caveat::ExpiresAt(_) => TAG_EXPIRES_AT,
            Caveat::NotBefore(_) => TAG_NOT_BEFORE,
            Caveat::Audience(_) => TAG_AUDIENCE,
            Caveat::Ops(_) => TAG_OPS,
            Caveat::DebitAccounts(_) => TAG_DEBIT_ACCOUNTS,
            Caveat::Ledger(_) => TAG_LEDGER,
            Caveat::MaxAmount(_) => TAG_MAX_AMOUNT,
            Caveat::Unknown { tag, .. } => *tag,
        }
    }

    /// Length of the value in the binary form (before any check of the bound).
    fn value_bytes(&self) -> usize {
        match self {
            Caveat::ExpiresAt(_) | Caveat::NotBefore(_) => 8,
            Caveat::Audience(text) => text.len(),
            Caveat::Ops(ops) => ops.len(),
            Caveat::DebitAccounts(ids) => ids.len().saturating_mul(16),
            Caveat::Ledger(_) => 4,
            Caveat::MaxAmount(_) => 16,
            Caveat::Unknown { value, .. } => value.len(),
        }
    }

    /// Length of the whole binary form (header and value).
    pub(super) fn encoded_bytes(&self) -> usize {
        CAVEAT_HEADER_BYTES.saturating_add(self.value_bytes())
    }

    /// Append the binary form to `out`. Only meaningful for a caveat that passed
    /// [`Caveat::check`]; an out-of-range value is written with a saturated length (and then
    /// fails to decode) rather than panicking.
    pub(super) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        let len = u16::try_from(self.value_bytes()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        match self {
            Caveat::ExpiresAt(secs) | Caveat::NotBefore(secs) => {
                out.extend_from_slice(&secs.to_be_bytes())
            }
            Caveat::Audience(text) => out.extend_from_slice(text.as_bytes()),
            Caveat::Ops(ops) => out.extend(ops.iter().map(|op| op.byte())),
            Caveat::DebitAccounts(ids) => {
                for id in ids {
                    out.extend_from_slice(&id.to_be_bytes());
                }
            }
            Caveat::Ledger(ledger) => out.extend_from_slice(&ledger.to_be_bytes()),
            Caveat::MaxAmount(amount) => out.extend_from_slice(&amount.to_be_bytes()),
            Caveat::Unknown { value, .. } => out.extend_from_slice(value),
        }
    }

    /// Parse one value of tag `tag`. Every known tag has exactly one accepted encoding.
    pub(super) fn parse(tag: u8, value: &[u8]) -> Result<Caveat, CapError> {
        let caveat = match tag {
            TAG_EXPIRES_AT => Caveat::ExpiresAt(u64::from_be_bytes(fixed(tag, value)?)),
            TAG_NOT_BEFORE => Caveat::NotBefore(u64::from_be_bytes(fixed(tag, value)?)),
            TAG_AUDIENCE => {
                let text = std::str::from_utf8(value)
                    .map_err(|_| bad(tag, "audience is not UTF-8".into()))?;
                Caveat::Audience(text.to_owned())
            }
            TAG_OPS => {
                let mut ops = BTreeSet::new();
                let mut previous = 0u8;
                for &byte in value {
                    let op = Op::from_byte(byte)
                        .ok_or_else(|| bad(tag, format!("unknown op byte {byte}")))?;
                    if byte <= previous {
                        return Err(bad(tag, "ops are not strictly ascending".into()));
                    }
                    previous = byte;
                    ops.insert(op);
                }
                Caveat::Ops(ops)
            }
            TAG_DEBIT_ACCOUNTS => {
                if !value.len().is_multiple_of(16) {
                    return Err(bad(
                        tag,
                        format!("{} bytes is not a multiple of 16", value.len()),
                    ));
                }
                let mut ids = BTreeSet::new();
                let mut previous: Option<u128> = None;
                for chunk in value.chunks_exact(16) {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(chunk);
                    let id = u128::from_be_bytes(id);
                    if previous.is_some_and(|p| id <= p) {
                        return Err(bad(tag, "account ids are not strictly ascending".into()));
                    }
                    previous = Some(id);
                    ids.insert(id);
                }
                Caveat::DebitAccounts(ids)
            }
            TAG_LEDGER => Caveat::Ledger(u32::from_be_bytes(fixed(tag, value)?)),
            TAG_MAX_AMOUNT => Caveat::MaxAmount(u128::from_be_bytes(fixed(tag, value)?)),
            _ => Caveat::Unknown {
                tag,
                value: value.to_vec(),
            },
        };
        caveat.check()?;
        Ok(caveat)
    }

    /// Check the bounds of a caveat built in code, so that [`Caveat::parse`] of its encoding
    /// gives it back.
    pub(super) fn check(&self) -> Result<(), CapError> {
        let tag = self.tag();
        match self {
            Caveat::Audience(text) => {
                if text.is_empty() || text.len() > AUDIENCE_BYTES_MAX {
                    return Err(bad(
                        tag,
                        format!("audience must be 1..={AUDIENCE_BYTES_MAX} bytes"),
                    ));
                }
                if !is_printable(text) {
                    return Err(bad(tag, "audience contains control characters".into()));
                }
            }
            Caveat::Ops(ops) if ops.is_empty() => {
                return Err(bad(tag, "ops must name at least one op".into()))
            }
            Caveat::DebitAccounts(ids) if ids.is_empty() || ids.len() > DEBIT_ACCOUNTS_MAX => {
                return Err(bad(
                    tag,
                    format!("debit accounts must name 1..={DEBIT_ACCOUNTS_MAX} ids"),
                ))
            }
            Caveat::Unknown { tag, value } => {
                if (TAG_EXPIRES_AT..=TAG_MAX_AMOUNT).contains(tag) {
                    return Err(bad(*tag, "a known tag cannot be an unknown caveat".into()));
                }
                if value.len() > usize::from(u16::MAX) {
                    return Err(bad(*tag, "value longer than 65535 bytes".into()));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Caveat {
    /// The command-line form ([`FromStr`] parses it back), except for unknown caveats, which
    /// show their tag and length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caveat::ExpiresAt(secs) => write!(f, "expires={secs}"),
            Caveat::NotBefore(secs) => write!(f, "not_before={secs}"),
            Caveat::Audience(text) => write!(f, "audience={text}"),
            Caveat::Ops(ops) => {
                let names: Vec<&str> = ops.iter().map(|op| op.name()).collect();
                write!(f, "ops={}", names.join(","))
            }
            Caveat::DebitAccounts(ids) => {
                let ids: Vec<String> = ids.iter().map(u128::to_string).collect();
                write!(f, "debit={}", ids.join(","))
            }
            Caveat::Ledger(ledger) => write!(f, "ledger={ledger}"),
            Caveat::MaxAmount(amount) => write!(f, "max_amount={amount}"),
            Caveat::Unknown { tag, value } => {
                write!(f, "unknown(tag={tag}, {} bytes)", value.len())
            }
        }
    }
}

impl FromStr for Caveat {
    type Err = CapError;

    /// Parse the command-line form: `expires=<secs>`, `not_before=<secs>`, `audience=<id>`,
    /// `ops=<op>,<op>`, `debit=<id>,<id>`, `ledger=<n>`, `max_amount=<n>`.
    fn from_str(text: &str) -> Result<Caveat, CapError> {
        let (name, value) = text.split_once('=').ok_or_else(|| {
            CapError::Malformed(format!("caveat {:?} is not name=value", truncated(text)))
        })?;
        let caveat = match name {
            "expires" => Caveat::ExpiresAt(number(name, value)?),
            "not_before" => Caveat::NotBefore(number(name, value)?),
            "audience" => Caveat::Audience(value.to_owned()),
            "ops" => Caveat::Ops(
                value
                    .split(',')
                    .map(|op| op.trim().parse())
                    .collect::<Result<_, _>>()?,
            ),
            "debit" => {
                // Bound the work before parsing: at most DEBIT_ACCOUNTS_MAX ids are accepted.
                if value.split(',').count() > DEBIT_ACCOUNTS_MAX {
                    return Err(CapError::Malformed(format!(
                        "debit names more than {DEBIT_ACCOUNTS_MAX} accounts"
                    )));
                }
                Caveat::DebitAccounts(
                    value
                        .split(',')
                        .map(|id| number(name, id.trim()))
                        .collect::<Result<_, _>>()?,
                )
            }
            "ledger" => Caveat::Ledger(number(name, value)?),
            "max_amount" => Caveat::MaxAmount(number(name, value)?),
            _ => {
                return Err(CapError::Malformed(format!(
                    "unknown caveat {:?} (expected expires, not_before, audience, ops, debit, \
                     ledger or max_amount)",
                    truncated(name)
                )))
            }
        };
        caveat.check()?;
        Ok(caveat)
    }
}

/// Whether `text` has no control characters (kids and audiences are shown in logs and errors).
pub(super) fn is_printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn number<T: FromStr>(name: &str, value: &str) -> Result<T, CapError> {
    value.parse().map_err(|_| {
        CapError::Malformed(format!(
            "{name}: {:?} is not a non-negative integer in range",
            truncated(value)
        ))
    })
}

fn fixed<const N: usize>(tag: u8, value: &[u8]) -> Result<[u8; N], CapError> {
    value
        .try_into()
        .map_err(|_| bad(tag, format!("value is {} bytes; expected {N}", value.len())))
}

fn bad(tag: u8, what: String) -> CapError {
    CapError::Malformed(format!("caveat tag {tag}: {what}"))
}

/// At most 32 characters of user text in an error message.
fn truncated(text: &str) -> String {
    text.chars().take(32).collect()
}
