//! Reading the ledger back out through its secondary indexes (`ledger::query`):
//!
//! - `GET /v1/accounts` and `GET /v1/transfers`: filtered by `user_data_128`, `user_data_64`,
//!   `user_data_32`, `ledger`, `code` and a timestamp range, oldest or newest first, paged by
//!   cursor.
//! - `GET /v1/accounts/{id}/transfers`: one account's transfers, also by `side`.
//! - `GET /v1/accounts/{id}/balances`: balances as of a timestamp or a leaf index, and
//!   `GET /v1/accounts/{id}/balance-history`: every change over a range, for accounts created
//!   with the `history` flag.
//!
//! A page holds at most [`QUERY_LIMIT_MAX`] results; `next_cursor` is the timestamp of its last
//! result when more may follow, and passing it back continues strictly after it (before it,
//! newest first). Timestamps are unique and only grow, so paging stays exact while writes go on.
//! Reads are linearizable unless `consistency=stale`, like every read.

use crate::error::ApiError;
use crate::http::consistency::{read, ReadParams};
use crate::http::decode::{parse_u128, path_text};
use crate::node::Node;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::canonical::{decode_leaf, LeafEvent};
use ledger::query::QUERY_LIMIT_MAX;
use ledger::{AccountFlags, Filter, Order, Side, Target};
use raft_store::BalanceRange;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Results per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// The parameters of every list read.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    consistency: Option<String>,
    user_data_128: Option<String>,
    user_data_64: Option<String>,
    user_data_32: Option<String>,
    ledger: Option<String>,
    code: Option<String>,
    timestamp_min: Option<String>,
    timestamp_max: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    /// Only for one account's transfers.
    side: Option<String>,
    /// Only for one account's transfers: the older names of `timestamp_min` / `timestamp_max`.
    from: Option<String>,
    to: Option<String>,
}

impl ReadParams for ListQuery {
    fn consistency(&self) -> Option<&str> {
        self.consistency.as_deref()
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AsOfQuery {
    consistency: Option<String>,
    as_of_timestamp: Option<String>,
    as_of_leaf: Option<String>,
}

impl ReadParams for AsOfQuery {
    fn consistency(&self) -> Option<&str> {
        self.consistency.as_deref()
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// A decimal number parameter no larger than `max`.
fn number(text: Option<&str>, name: &str, max: u128) -> Result<Option<u128>, ApiError> {
    let Some(t) = text else {
        return Ok(None);
    };
    if !ledger::wire::is_canonical_decimal(t) {
        return Err(invalid(format!(
            "{name} must be a decimal integer (digits, no leading zeros), got {t:?}"
        )));
    }
    match t.parse::<u128>() {
        Ok(v) if v <= max => Ok(Some(v)),
        _ => Err(invalid(format!("{name} must be at most {max}"))),
    }
}

fn narrow<T: TryFrom<u128> + Default>(v: Option<u128>) -> T {
    v.and_then(|v| T::try_from(v).ok()).unwrap_or_default()
}

/// What a list read asks for, checked.
struct Page {
    filter: Filter,
    /// `limit` as asked (the filter asks one more, to know whether a next page exists).
    limit: usize,
}

fn order(text: Option<&str>) -> Result<Order, ApiError> {
    match text {
        None | Some("asc") => Ok(Order::Asc),
        Some("desc") => Ok(Order::Desc),
        Some(o) => Err(invalid(format!("order must be asc or desc, not {o:?}"))),
    }
}

/// The range, order, limit and cursor of a list read.
fn page(q: &ListQuery, mut filter: Filter) -> Result<Page, ApiError> {
    let max = u128::from(u64::MAX);
    let lo = number(q.timestamp_min.as_deref(), "timestamp_min", max)?;
    let hi = number(q.timestamp_max.as_deref(), "timestamp_max", max)?;
    filter.timestamp_min = narrow(lo);
    filter.timestamp_max = hi.map_or(u64::MAX, |v| narrow(Some(v)));
    filter.order = order(q.order.as_deref())?;
    let limit = match number(q.limit.as_deref(), "limit", QUERY_LIMIT_MAX as u128)? {
        Some(0) => return Err(invalid(format!("limit must be 1 to {QUERY_LIMIT_MAX}"))),
        Some(l) => usize::try_from(l).unwrap_or(QUERY_LIMIT_MAX),
        None => DEFAULT_LIMIT,
    };
    if let Some(c) = number(q.cursor.as_deref(), "cursor", max)? {
        let c: u64 = narrow(Some(c));
        let beyond = match filter.order {
            Order::Asc => c
                .checked_add(1)
                .map(|n| filter.timestamp_min = filter.timestamp_min.max(n)),
            Order::Desc => c
                .checked_sub(1)
                .map(|p| filter.timestamp_max = filter.timestamp_max.min(p)),
        };
        if beyond.is_none() {
            // Nothing lies beyond the cursor: an empty range.
            filter.timestamp_min = 1;
            filter.timestamp_max = 0;
        }
    }
    filter.limit = limit + 1;
    Ok(Page { filter, limit })
}

/// The filter fields of a list read.
fn filter(q: &ListQuery) -> Result<Filter, ApiError> {
    Ok(Filter {
        user_data_128: narrow(number(
            q.user_data_128.as_deref(),
            "user_data_128",
            u128::MAX,
        )?),
        user_data_64: narrow(number(
            q.user_data_64.as_deref(),
            "user_data_64",
            u64::MAX.into(),
        )?),
        user_data_32: narrow(number(
            q.user_data_32.as_deref(),
            "user_data_32",
            u32::MAX.into(),
        )?),
        ledger: narrow(number(q.ledger.as_deref(), "ledger", u32::MAX.into())?),
        code: narrow(number(q.code.as_deref(), "code", u16::MAX.into())?),
        ..Filter::default()
    })
}

fn refuse(present: bool, name: &str, route: &str) -> Result<(), ApiError> {
    if present {
        return Err(invalid(format!("{name} does not apply to {route}")));
    }
    Ok(())
}

/// Cut a page fetched with one extra result to `limit`; the cursor when more may follow.
fn cut<T>(mut items: Vec<T>, limit: usize, ts: impl Fn(&T) -> u64) -> (Vec<T>, Option<String>) {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(|i| ts(i).to_string())
    } else {
        None
    };
    (items, next)
}

/// The page of a query over the whole ledger (`route`): every filter, no `side` and no
/// `from`/`to` (those belong to one account's transfers).
fn ledger_wide_page(q: &ListQuery, route: &str) -> Result<Page, ApiError> {
    refuse(q.side.is_some(), "side", route)?;
    refuse(q.from.is_some() || q.to.is_some(), "from/to", route)?;
    page(q, filter(q)?)
}

pub(crate) async fn query_accounts(
    State(node): State<Arc<Node>>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = |q: &ListQuery| ledger_wide_page(q, "GET /v1/accounts");
    read(node, headers, uri, q, check, |node, page| {
        let found = node
            .state
            .query_accounts(&page.filter)
            .map_err(ApiError::storage)?;
        let (accounts, next) = cut(found, page.limit, |r| r.account.timestamp);
        let accounts: Vec<ledger::Account> = accounts.into_iter().map(|r| r.account).collect();
        Ok(Json(json!({ "accounts": accounts, "next_cursor": next })).into_response())
    })
    .await
}

pub(crate) async fn query_transfers(
    State(node): State<Arc<Node>>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = |q: &ListQuery| ledger_wide_page(q, "GET /v1/transfers");
    read(node, headers, uri, q, check, |node, page| {
        let found = node
            .state
            .query_transfers(Target::Transfers, &page.filter)
            .map_err(ApiError::storage)?;
        let (transfers, next) = cut(found, page.limit, |t| t.transfer.timestamp);
        Ok(Json(json!({ "transfers": transfers, "next_cursor": next })).into_response())
    })
    .await
}

/// The account `id`, or 404 `account_not_found`.
pub(crate) fn account_exists(node: &Node, id: u128) -> Result<ledger::AccountRecord, ApiError> {
    node.state
        .lookup_account(id)
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "account_not_found",
                format!("no account {id}"),
            )
        })
}

pub(crate) async fn account_transfers(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = move |q: &ListQuery| {
        let id = parse_u128(&path_text(id, "account id")?, "account id")?;
        if q.from.is_some() && q.timestamp_min.is_some()
            || q.to.is_some() && q.timestamp_max.is_some()
        {
            return Err(invalid(
                "from/to are the older names of timestamp_min/timestamp_max: give one of each"
                    .into(),
            ));
        }
        let side = match q.side.as_deref() {
            None | Some("both") => Side::Both,
            Some("debits") => Side::Debits,
            Some("credits") => Side::Credits,
            Some(s) => {
                return Err(invalid(format!(
                    "side must be debits, credits or both, not {s:?}"
                )))
            }
        };
        let range = ListQuery {
            timestamp_min: q.timestamp_min.clone().or_else(|| q.from.clone()),
            timestamp_max: q.timestamp_max.clone().or_else(|| q.to.clone()),
            order: q.order.clone(),
            limit: q.limit.clone(),
            cursor: q.cursor.clone(),
            ..ListQuery::default()
        };
        Ok((id, side, page(&range, filter(q)?)?))
    };
    read(node, headers, uri, q, check, |node, (id, side, page)| {
        account_exists(node, id)?;
        let target = Target::AccountTransfers {
            account_id: id,
            side,
        };
        let found = node
            .state
            .query_transfers(target, &page.filter)
            .map_err(ApiError::storage)?;
        let (transfers, next) = cut(found, page.limit, |t| t.transfer.timestamp);
        // `next_from` (oldest first only) is the older form of the cursor: the next page's
        // `from`.
        let next_from = match page.filter.order {
            Order::Asc => next
                .as_deref()
                .and_then(|c| c.parse::<u64>().ok())
                .map(|c| (c + 1).to_string()),
            Order::Desc => None,
        };
        Ok(Json(json!({
            "transfers": transfers,
            "next_cursor": next,
            "next_from": next_from,
        }))
        .into_response())
    })
    .await
}

/// The account, which must keep its balance history.
fn history_account(node: &Node, id: u128) -> Result<ledger::AccountRecord, ApiError> {
    let r = account_exists(node, id)?;
    if !r.account.flags.has(AccountFlags::HISTORY) {
        return Err(ApiError::bad_request(
            "history_not_kept",
            format!(
                "account {id} was created without the history flag: only its current balances \
                 are kept"
            ),
        ));
    }
    Ok(r)
}

/// The timestamp of the event at leaf `index`.
fn leaf_timestamp(node: &Node, index: u64) -> Result<u64, ApiError> {
    let data = node
        .state
        .leaf_data(index)
        .map_err(ApiError::storage)?
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_range",
                format!("leaf {index} is beyond this node's applied tree"),
            )
        })?;
    match decode_leaf(&data) {
        Ok(LeafEvent::Account { account, .. }) => Ok(account.timestamp),
        Ok(LeafEvent::Transfer { transfer, .. }) => Ok(transfer.timestamp),
        Ok(LeafEvent::Expiry { timestamp, .. }) => Ok(timestamp),
        Err(e) => Err(ApiError::safe_mode(format!(
            "leaf {index} does not decode: {e}"
        ))),
    }
}

fn balance_json(account_id: u128, timestamp: u64, e: &ledger::BalanceEntry) -> serde_json::Value {
    json!({
        "account_id": account_id.to_string(),
        "timestamp": timestamp.to_string(),
        "debits_pending": e.debits_pending.to_string(),
        "debits_posted": e.debits_posted.to_string(),
        "credits_pending": e.credits_pending.to_string(),
        "credits_posted": e.credits_posted.to_string(),
        "leaf": e.leaf.to_string(),
    })
}

pub(crate) async fn balances_as_of(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<AsOfQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = move |q: &AsOfQuery| {
        let id = parse_u128(&path_text(id, "account id")?, "account id")?;
        let max = u128::from(u64::MAX);
        let ts = number(q.as_of_timestamp.as_deref(), "as_of_timestamp", max)?;
        let leaf = number(q.as_of_leaf.as_deref(), "as_of_leaf", max)?;
        if ts.is_some() && leaf.is_some() {
            return Err(invalid(
                "give as_of_timestamp or as_of_leaf, not both".into(),
            ));
        }
        Ok((id, ts, leaf))
    };
    read(node, headers, uri, q, check, |node, (id, ts, leaf)| {
        history_account(node, id)?;
        let as_of: u64 = match (ts, leaf) {
            (Some(t), _) => narrow(Some(t)),
            (None, Some(l)) => leaf_timestamp(node, narrow(Some(l)))?,
            (None, None) => u64::MAX,
        };
        let found = node
            .state
            .balances(id, BalanceRange::as_of(as_of))
            .map_err(ApiError::storage)?;
        match found.first() {
            Some((t, e)) => Ok(Json(balance_json(id, *t, e)).into_response()),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "account_not_found",
                format!("account {id} did not exist yet at timestamp {as_of}"),
            )),
        }
    })
    .await
}

pub(crate) async fn balance_history(
    State(node): State<Arc<Node>>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let check = move |q: &ListQuery| {
        let id = parse_u128(&path_text(id, "account id")?, "account id")?;
        let route = "GET /v1/accounts/{id}/balance-history";
        for (present, name) in [
            (q.user_data_128.is_some(), "user_data_128"),
            (q.user_data_64.is_some(), "user_data_64"),
            (q.user_data_32.is_some(), "user_data_32"),
            (q.ledger.is_some(), "ledger"),
            (q.code.is_some(), "code"),
            (q.side.is_some(), "side"),
            (q.from.is_some() || q.to.is_some(), "from/to"),
        ] {
            refuse(present, name, route)?;
        }
        Ok((id, page(q, Filter::default())?))
    };
    read(node, headers, uri, q, check, |node, (id, page)| {
        history_account(node, id)?;
        let f = &page.filter;
        let found = node
            .state
            .balances(
                id,
                BalanceRange {
                    lo: f.timestamp_min,
                    hi: f.timestamp_max,
                    order: f.order,
                    limit: f.limit,
                },
            )
            .map_err(ApiError::storage)?;
        let (entries, next) = cut(found, page.limit, |(t, _)| *t);
        let balances: Vec<serde_json::Value> = entries
            .iter()
            .map(|(t, e)| balance_json(id, *t, e))
            .collect();
        Ok(Json(json!({ "balances": balances, "next_cursor": next })).into_response())
    })
    .await
}
