//! `ronctl query …`: accounts and transfers by their fields, an account's transfers by side, and
//! balances as of a point (accounts created with the `history` flag).

use crate::common::{not_found, print_json, table, transfer_row, Fail, TRANSFER_HEADERS};
use clap::{Args, Subcommand};
use ron_ledger_client::{AsOf, BalanceAt, Client, Consistency, Page, QueryFilter, TransferSide};

/// The filters every list query takes.
#[derive(Args)]
pub(crate) struct FilterArgs {
    #[arg(long, default_value_t = 0)]
    user_data_128: u128,
    #[arg(long, default_value_t = 0)]
    user_data_64: u64,
    #[arg(long, default_value_t = 0)]
    user_data_32: u32,
    #[arg(long, default_value_t = 0)]
    ledger: u32,
    #[arg(long, default_value_t = 0)]
    code: u16,
    /// Oldest timestamp (inclusive).
    #[arg(long)]
    after: Option<u64>,
    /// Newest timestamp (inclusive).
    #[arg(long)]
    before: Option<u64>,
    /// Newest first.
    #[arg(long)]
    desc: bool,
    /// Results per page (at most 1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue after a page's `next_cursor`.
    #[arg(long)]
    cursor: Option<u64>,
}

impl FilterArgs {
    fn filter(&self) -> QueryFilter {
        QueryFilter {
            user_data_128: self.user_data_128,
            user_data_64: self.user_data_64,
            user_data_32: self.user_data_32,
            ledger: self.ledger,
            code: self.code,
            timestamp_min: self.after,
            timestamp_max: self.before,
            newest_first: self.desc,
            limit: self.limit,
            cursor: self.cursor,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum QueryCmd {
    /// Accounts by their fields. Example: ronctl query accounts --ledger 840 --user-data-128 7
    Accounts(FilterArgs),
    /// Transfers by their fields, or one account's with --account (and --side debits|credits).
    /// Example: ronctl query transfers --account 1 --side debits --code 3 --desc
    Transfers {
        #[arg(long)]
        account: Option<u128>,
        #[arg(long, default_value = "both", requires = "account")]
        side: String,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// An account's balances as of a timestamp or a leaf (latest without either).
    /// Example: ronctl query balance 1 --at-timestamp 1764600000000000000
    Balance {
        id: u128,
        #[arg(long, conflicts_with = "at_leaf")]
        at_timestamp: Option<u64>,
        #[arg(long)]
        at_leaf: Option<u64>,
    },
    /// An account's balance changes over a range. Example: ronctl query balance-history 1
    BalanceHistory {
        id: u128,
        #[command(flatten)]
        filter: FilterArgs,
    },
}

const BALANCE_HEADERS: [&str; 6] = [
    "TIMESTAMP",
    "DEBITS_PENDING",
    "DEBITS_POSTED",
    "CREDITS_PENDING",
    "CREDITS_POSTED",
    "LEAF",
];

fn balance_row(b: &BalanceAt) -> Vec<String> {
    vec![
        b.timestamp.to_string(),
        b.debits_pending.to_string(),
        b.debits_posted.to_string(),
        b.credits_pending.to_string(),
        b.credits_posted.to_string(),
        b.leaf.to_string(),
    ]
}

fn balance_json(b: &BalanceAt) -> serde_json::Value {
    serde_json::json!({
        "account_id": b.account_id.to_string(), "timestamp": b.timestamp.to_string(),
        "debits_pending": b.debits_pending.to_string(), "debits_posted": b.debits_posted.to_string(),
        "credits_pending": b.credits_pending.to_string(),
        "credits_posted": b.credits_posted.to_string(), "leaf": b.leaf.to_string(),
    })
}

fn more(next: Option<u64>) {
    if let Some(n) = next {
        out!("more: --cursor {n}");
    }
}

fn cursor_json(next: Option<u64>) -> serde_json::Value {
    next.map_or(serde_json::Value::Null, |n| n.to_string().into())
}

pub(crate) async fn run(
    cmd: QueryCmd,
    client: &Client,
    c: Consistency,
    json: bool,
) -> Result<(), Fail> {
    match cmd {
        QueryCmd::Accounts(f) => {
            let page = client.query_accounts(&f.filter(), c).await?;
            if json {
                print_json(&serde_json::json!({"accounts": page.items,
                    "next_cursor": cursor_json(page.next_cursor)}));
            } else {
                let rows = page
                    .items
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.to_string(),
                            a.ledger.to_string(),
                            a.code.to_string(),
                            a.user_data_128.to_string(),
                            a.debits_posted.to_string(),
                            a.credits_posted.to_string(),
                            a.timestamp.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                table(
                    &[
                        "ID",
                        "LEDGER",
                        "CODE",
                        "USER_DATA_128",
                        "DEBITS_POSTED",
                        "CREDITS_POSTED",
                        "TIMESTAMP",
                    ],
                    &rows,
                );
                more(page.next_cursor);
            }
            Ok(())
        }
        QueryCmd::Transfers {
            account,
            side,
            filter,
        } => {
            let page: Page<_> = match account {
                None => client.query_transfers(&filter.filter(), c).await?,
                Some(id) => {
                    let side = match side.as_str() {
                        "both" => TransferSide::Both,
                        "debits" => TransferSide::Debits,
                        "credits" => TransferSide::Credits,
                        other => {
                            return Err(Fail::Usage(format!(
                                "--side must be debits, credits or both, not {other:?}"
                            )))
                        }
                    };
                    client
                        .query_account_transfers(id, side, &filter.filter(), c)
                        .await?
                        .ok_or_else(|| not_found("account", id))?
                }
            };
            if json {
                print_json(&serde_json::json!({"transfers": page.items,
                    "next_cursor": cursor_json(page.next_cursor)}));
            } else {
                table(
                    &TRANSFER_HEADERS,
                    &page.items.iter().map(transfer_row).collect::<Vec<_>>(),
                );
                more(page.next_cursor);
            }
            Ok(())
        }
        QueryCmd::Balance {
            id,
            at_timestamp,
            at_leaf,
        } => {
            let at = match (at_timestamp, at_leaf) {
                (Some(t), _) => AsOf::Timestamp(t),
                (None, Some(l)) => AsOf::Leaf(l),
                (None, None) => AsOf::Latest,
            };
            let b = client
                .balance_as_of(id, at, c)
                .await?
                .ok_or_else(|| not_found("account (at that point)", id))?;
            if json {
                print_json(&balance_json(&b));
            } else {
                table(&BALANCE_HEADERS, &[balance_row(&b)]);
            }
            Ok(())
        }
        QueryCmd::BalanceHistory { id, filter } => {
            let page = client
                .balance_history(id, &filter.filter(), c)
                .await?
                .ok_or_else(|| not_found("account", id))?;
            if json {
                let items: Vec<_> = page.items.iter().map(balance_json).collect();
                print_json(&serde_json::json!({"balances": items,
                    "next_cursor": cursor_json(page.next_cursor)}));
            } else {
                table(
                    &BALANCE_HEADERS,
                    &page.items.iter().map(balance_row).collect::<Vec<_>>(),
                );
                more(page.next_cursor);
            }
            Ok(())
        }
    }
}
