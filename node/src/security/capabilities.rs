//! Capability checks: every mutation carries a macaroon-style token (`ledger::capability`) in
//! `Authorization: Bearer …`, verified here on whichever node receives the request — MAC chain
//! against the root key its KID names, audience, validity window, lifetime cap, caveats — then
//! against the replicated revocation deny-list. Admin operations also need an mTLS client
//! certificate. Only KIDs and token ids are ever logged; keys are zeroized when dropped.
//!
//! The root keys live in `[auth] key_file` (JSON, mode 0600, see `docs/CAPABILITIES.md`). Several
//! KIDs may be active at once; `SIGHUP` re-reads the file, so keys rotate without a restart.

use crate::config::Config;
use crate::error::ApiError;
use crate::security::files::{read_private_file, write_private_file};
use axum::http::{header, HeaderMap, StatusCode};
use ledger::capability::{CapError, Grant, KeyRing, Op, Token, VerifyContext, TOKEN_TEXT_MAX};
use ledger::{Operation, Transfer, TransferFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

/// The node's capability verifier.
pub struct Auth {
    enabled: bool,
    require_kid: bool,
    max_lifetime_secs: u64,
    audience: String,
    key_file: Option<PathBuf>,
    ring: RwLock<Arc<KeyRing>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.enabled)
            .field("kids", &self.kids())
            .finish()
    }
}

fn load_ring(path: &Path) -> anyhow::Result<KeyRing> {
    let text = read_private_file(path, "capability key file")?;
    KeyRing::from_json(&text)
        .map_err(|e| anyhow::anyhow!("capability key file {}: {e}", path.display()))
}

impl Auth {
    /// Load the key ring the configuration names; fails closed (naming the file) when
    /// capabilities are enabled and the file is missing, unreadable, loose or malformed.
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        let a = &config.auth;
        let ring = match (&a.key_file, a.enabled) {
            (Some(path), true) => load_ring(path)?,
            (None, true) => anyhow::bail!(
                "auth.enabled = true needs auth.key_file (capability root keys; `ron-ledger certs` writes one), \
                 or set auth.enabled = false for an unauthenticated test node"
            ),
            (_, false) => {
                tracing::warn!(
                    node = config.node_id,
                    "capabilities are disabled (auth.enabled = false): anyone who reaches the API can write"
                );
                KeyRing::default()
            }
        };
        let auth = Self {
            enabled: a.enabled,
            require_kid: a.require_kid,
            max_lifetime_secs: a.max_lifetime_secs,
            audience: config.cluster_id.clone(),
            key_file: a.key_file.clone(),
            ring: RwLock::new(Arc::new(ring)),
        };
        if auth.enabled {
            tracing::info!(node = config.node_id, kids = ?auth.kids(), "capability keys loaded");
        }
        Ok(auth)
    }

    /// The KIDs in the ring, with whether each is retired (verifies but does not mint).
    pub fn kids(&self) -> Vec<(String, bool)> {
        self.ring().kids()
    }

    fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-read the key file (on SIGHUP). On error the old ring stays in force.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(path) = &self.key_file else {
            return Ok(());
        };
        if !self.enabled {
            return Ok(());
        }
        let ring = Arc::new(load_ring(path)?);
        let kids = ring.kids();
        match self.ring.write() {
            Ok(mut r) => *r = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        tracing::info!(kids = ?kids, "capability keys reloaded");
        Ok(())
    }

    /// Whether capabilities are checked at all (`[auth] enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Verify the request's bearer token at `now_secs`. `Ok(None)` when capabilities are
    /// disabled. The revocation list is checked by the caller (it lives in the ledger state).
    pub fn verify(&self, headers: &HeaderMap, now_secs: u64) -> Result<Option<Grant>, ApiError> {
        self.verify_in(headers, header::AUTHORIZATION.as_str(), now_secs)
    }

    /// Verify the second approval of a reversal (`X-Ron-Approval: Bearer <token>`), like
    /// [`Auth::verify`]. `Ok(None)` when capabilities are disabled.
    pub fn verify_approval(
        &self,
        headers: &HeaderMap,
        now_secs: u64,
    ) -> Result<Option<Grant>, ApiError> {
        self.verify_in(headers, APPROVAL_HEADER, now_secs)
            .map_err(|e| {
                if e.reason == "unauth" {
                    // No approval at all: the request is authenticated, its reversal not approved.
                    ApiError::new(
                        StatusCode::FORBIDDEN,
                        "policy_denied",
                        "a reversal needs dual control: send a second governance capability of \
                         another holder as `X-Ron-Approval: Bearer <token>`",
                    )
                } else {
                    e
                }
            })
    }

    fn verify_in(
        &self,
        headers: &HeaderMap,
        name: &str,
        now_secs: u64,
    ) -> Result<Option<Grant>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let token = bearer(headers, name)?;
        let token = Token::decode(token).map_err(cap_error)?;
        let ctx = VerifyContext {
            now_secs,
            audience: &self.audience,
            max_lifetime_secs: self.max_lifetime_secs,
            require_kid: self.require_kid,
        };
        token
            .verify(&self.ring(), &ctx)
            .map(Some)
            .map_err(|e| cap_error_kid(e, &token.kid))
    }
}

/// 401 `cap_ambiguous`: a request must carry exactly one credential. Judging only the first of
/// several (say a valid token followed by a revoked one) would let the request mean different
/// things to different readers, so the whole request is refused.
fn ambiguous(what: &str) -> ApiError {
    tracing::info!(reason = "cap_ambiguous", "{what}");
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "cap_ambiguous",
        format!("{what}: send exactly one `Authorization: Bearer <token>` header"),
    )
}

/// The token text of `Authorization: Bearer <token>`; `unauth` when absent, `cap_ambiguous` when
/// several headers or several tokens are sent, `cap_invalid` when oversized or not a bearer
/// credential.
fn bearer<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    let mut all = headers.get_all(name).iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(ambiguous(&format!("several {name} headers")));
    }
    let Some(value) = first else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauth",
            "this operation needs a capability: send `Authorization: Bearer <token>`",
        ));
    };
    if value.len() > TOKEN_TEXT_MAX + "Bearer ".len() {
        return Err(cap_error(CapError::TooLarge));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "cap_invalid",
            "the Authorization header is not ASCII",
        )
    })?;
    match text.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            // Token text is base64url: a space or comma inside it means more than one credential.
            if token.bytes().any(|b| b == b',' || b.is_ascii_whitespace()) {
                return Err(ambiguous("several tokens in one Authorization header"));
            }
            Ok(token)
        }
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauth",
            "only `Authorization: Bearer <capability>` is accepted",
        )),
    }
}

/// A capability error as an API error: 403 for `policy_denied`, 401 otherwise.
pub fn cap_error(e: CapError) -> ApiError {
    let reason = e.reason();
    let status = if reason == "policy_denied" {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    ApiError::new(status, reason, e.to_string())
}

/// A capability error, logged with the token's KID (never the token).
fn cap_error_kid(e: CapError, kid: &str) -> ApiError {
    let err = cap_error(e);
    tracing::info!(reason = %err.reason, kid = %kid, "capability refused");
    err
}

/// Whether `grant` allows every event of `op`. Amount 0 (a post, void or reversal taking the
/// referenced amount, or a balancing transfer without bound) counts as unbounded, and a zero
/// debit account or ledger (taken from the referenced transfer) is not an allowed one: holders
/// of a restricted token give those fields explicitly.
pub fn authorize_operation(grant: &Grant, op: &Operation) -> Result<(), ApiError> {
    let with_kid = |e: CapError| cap_error_kid(e, &grant.kid);
    match op {
        Operation::CreateAccounts(accounts) => {
            grant.allow_op(Op::CreateAccounts).map_err(with_kid)?;
            for a in accounts {
                grant.allow_account(a.ledger).map_err(with_kid)?;
            }
        }
        Operation::CreateTransfers(transfers) => {
            grant.allow_op(Op::CreateTransfers).map_err(with_kid)?;
            for t in transfers {
                authorize_transfer(grant, t).map_err(with_kid)?;
            }
        }
    }
    Ok(())
}

fn authorize_transfer(grant: &Grant, t: &Transfer) -> Result<(), CapError> {
    let amount = if t.amount == 0 { u128::MAX } else { t.amount };
    grant.allow_transfer(t.debit_account_id, t.ledger, amount)?;
    // A closing transfer closes its credit account too: a change to that account as strong as
    // debiting it (nothing can post to it until the hold is voided), so a token limited to some
    // debit accounts must name the credit account as well.
    if t.flags.has(TransferFlags::CLOSING_CREDIT) {
        grant.allow_transfer(t.credit_account_id, t.ledger, amount)?;
    }
    Ok(())
}

/// The header carrying a reversal's second approval (dual control).
pub const APPROVAL_HEADER: &str = "x-ron-approval";

/// Whether `op` holds a reversal (a governance action under dual control).
pub fn has_reversal(op: &Operation) -> bool {
    match op {
        Operation::CreateAccounts(_) => false,
        Operation::CreateTransfers(transfers) => {
            transfers.iter().any(Transfer::requires_governance)
        }
    }
}

fn denied(message: impl Into<String>) -> ApiError {
    let e = ApiError::new(StatusCode::FORBIDDEN, "policy_denied", message);
    tracing::info!(reason = "policy_denied", "{}", e.message);
    e
}

/// Dual control for a reversal: the request's capability and the approval both allow
/// `transfers.reverse`, they are two tokens (different ids) of two holders (different holder
/// tags in their ids, `ledger::capability::holder_token_id`), and every reversal in `op` is
/// within the approval's other caveats too (debit accounts, ledger, amount), as it is within the
/// request's (`authorize_operation`): narrowing an approver's token narrows what it approves.
pub fn authorize_reversal(grant: &Grant, approval: &Grant, op: &Operation) -> Result<(), ApiError> {
    grant
        .allow_op(Op::Reverse)
        .map_err(|e| cap_error_kid(e, &grant.kid))?;
    approval
        .allow_op(Op::Reverse)
        .map_err(|e| cap_error_kid(e, &approval.kid))?;
    if let Operation::CreateTransfers(transfers) = op {
        for t in transfers.iter().filter(|t| t.requires_governance()) {
            authorize_transfer(approval, t).map_err(|e| cap_error_kid(e, &approval.kid))?;
        }
    }
    dual_control(Some(grant.id), Some(approval.id))
}

/// The part of dual control the ids alone decide, so the leader can check a forwarded reversal
/// again: two tokens, of two holders.
pub fn dual_control(token: Option<[u8; 16]>, approval: Option<[u8; 16]>) -> Result<(), ApiError> {
    let (Some(token), Some(approval)) = (token, approval) else {
        return Err(denied(
            "a reversal needs two governance capabilities (Authorization and X-Ron-Approval)",
        ));
    };
    if token == approval {
        return Err(denied(
            "dual control: the approval is the same token as the request's",
        ));
    }
    let tag = ledger::capability::HOLDER_TAG_BYTES;
    if token[..tag] == approval[..tag] {
        return Err(denied(
            "dual control: both tokens belong to the same holder; a second holder must approve",
        ));
    }
    Ok(())
}

/// Whether `grant` allows an admin operation.
pub fn authorize_admin(grant: &Grant) -> Result<(), ApiError> {
    grant
        .allow_op(Op::Admin)
        .map_err(|e| cap_error_kid(e, &grant.kid))
}

/// A key ring with one fresh random root key named `kid`, written to `path` (0600). Refuses to
/// replace an existing file.
pub fn create_key_file(path: &Path, kid: &str) -> anyhow::Result<()> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::Rng::fill(&mut rand::rngs::OsRng, &mut key[..]);
    let mut ring = KeyRing::new();
    ring.generate_entry(kid, *key)
        .map_err(|e| anyhow::anyhow!("key ring: {e}"))?;
    write_private_file(path, &ring.to_json())
}

/// Mint a token from the newest active key of the ring in `key_file`: `ops` for `audience`,
/// valid for `ttl_secs` from `now_secs`.
pub fn mint_from_file(
    key_file: &Path,
    audience: &str,
    ops: &[Op],
    now_secs: u64,
    ttl_secs: u64,
) -> anyhow::Result<Token> {
    use ledger::capability::Caveat;
    let ring = load_ring(key_file)?;
    let key = ring
        .minting_key()
        .ok_or_else(|| anyhow::anyhow!("{}: no active key", key_file.display()))?;
    let id: [u8; 16] = rand::random();
    Token::mint(
        key,
        id,
        now_secs,
        vec![
            Caveat::ExpiresAt(now_secs.saturating_add(ttl_secs)),
            Caveat::Audience(audience.to_string()),
            Caveat::Ops(ops.iter().copied().collect()),
        ],
    )
    .map_err(|e| anyhow::anyhow!("mint: {e}"))
}
