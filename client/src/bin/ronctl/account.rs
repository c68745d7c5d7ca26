//! `ronctl account …`: create an account, look one up, page through its transfers.

use crate::common::{
    not_found, parse_flags, print_json, report, table, transfer_row, Fail, TRANSFER_HEADERS,
};
use clap::Subcommand;
use ledger::{Account, AccountFlags};
use ron_ledger_client::{Client, Consistency};

#[derive(Subcommand)]
pub(crate) enum AccountCmd {
    /// Create an account. Example: ronctl account create --id 1 --ledger 840 --code 1
    Create {
        #[arg(long)]
        id: u128,
        #[arg(long)]
        ledger: u32,
        #[arg(long)]
        code: u16,
        /// Comma-separated flag names, e.g. debits_must_not_exceed_credits.
        #[arg(long, default_value = "")]
        flags: String,
        #[arg(long, default_value_t = 0)]
        user_data_128: u128,
    },
    /// Look up an account. Example: ronctl account get 1
    Get { id: u128 },
    /// An account's transfers. Example: ronctl account history 1 --limit 20
    History {
        id: u128,
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = u64::MAX)]
        to: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

fn account_flag_names() -> &'static [(&'static str, u16)] {
    <AccountFlags as ledger::wire::FlagSet>::NAMES
}

pub(crate) async fn run(
    cmd: AccountCmd,
    client: &Client,
    c: Consistency,
    json: bool,
) -> Result<(), Fail> {
    match cmd {
        AccountCmd::Create {
            id,
            ledger,
            code,
            flags,
            user_data_128,
        } => {
            let a = Account {
                id,
                ledger,
                code,
                user_data_128,
                flags: AccountFlags(parse_flags(&flags, account_flag_names(), ',')?),
                ..Default::default()
            };
            let r = client.create_accounts(vec![a]).await?;
            report(json, &r, |x| x.result.is_success())
        }
        AccountCmd::Get { id } => match client.lookup_account(id, c).await? {
            Some(a) if json => {
                print_json(&a);
                Ok(())
            }
            Some(a) => {
                table(
                    &[
                        "id",
                        "ledger",
                        "code",
                        "debits_pending",
                        "debits_posted",
                        "credits_pending",
                        "credits_posted",
                        "flags",
                    ],
                    &[vec![
                        a.id.to_string(),
                        a.ledger.to_string(),
                        a.code.to_string(),
                        a.debits_pending.to_string(),
                        a.debits_posted.to_string(),
                        a.credits_pending.to_string(),
                        a.credits_posted.to_string(),
                        serde_json::to_string(&a.flags).unwrap_or_default(),
                    ]],
                );
                Ok(())
            }
            None => Err(not_found("account", id)),
        },
        AccountCmd::History {
            id,
            from,
            to,
            limit,
        } => {
            let page = client
                .account_transfers(id, from, to, limit, c)
                .await?
                .ok_or_else(|| not_found("account", id))?;
            if json {
                print_json(
                    &serde_json::json!({"transfers": page.transfers, "next_from": page.next_from}),
                );
            } else {
                table(
                    &TRANSFER_HEADERS,
                    &page.transfers.iter().map(transfer_row).collect::<Vec<_>>(),
                );
                if let Some(n) = page.next_from {
                    out!("more: --from {n}");
                }
            }
            Ok(())
        }
    }
}
