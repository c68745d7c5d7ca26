//! The README's SDK example, as a program that runs against the dev cluster
//! (`bash scripts/start.sh`, HTTPS with mutual TLS and capabilities):
//!
//! ```sh
//! cargo run -p client --example quickstart                    # ron-ledger-dev, 127.0.0.1:7001-7003
//! cargo run -p client --example quickstart -- PKI_DIR TOKEN_FILE SEED[,SEED...]
//! ```
//!
//! It creates two accounts and a transfer under fresh ids (so it can run again and again), reads
//! the transfer back with its state, then fetches every seed's checkpoint key and reads the
//! transfer again as an auditor: accepted only with a signed checkpoint and an inclusion proof.
//! CI runs it against a 3-node TLS + capabilities cluster (`tests/tests/client.rs`).

use ledger::{Account, CreateTransferResult, Transfer, TransferState, TrustedKeys};
use ron_ledger_client::{Capability, Client, ClientConfig, ClientTls, Consistency};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pki = PathBuf::from(args.next().unwrap_or_else(|| "ron-ledger-dev/pki".into()));
    let token = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "ron-ledger-dev/auth/writer.token".into()),
    );
    let seeds: Vec<String> = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003".into())
        .split(',')
        .map(str::to_string)
        .collect();

    // HTTPS: trust only the cluster CA, present the client certificate, send the capability.
    ron_ledger_client::install_crypto_provider();
    let mut config = ClientConfig::new(seeds.clone());
    config.tls = Some(ClientTls::from_files(
        &pki.join("ca.pem"),
        Some((&pki.join("client.pem"), &pki.join("client.key"))),
    )?);
    config.capability = Some(Capability::new(std::fs::read_to_string(&token)?));
    let client = Client::new(config.clone())?;

    // Fresh ids for this run: accounts `base`, `base + 1`; transfer `base + 2`.
    let base = u128::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros() as u64,
    ) << 16;
    let account = |id| Account {
        id,
        ledger: 1,
        code: 1,
        ..Default::default()
    };
    for outcome in client
        .create_accounts(vec![account(base), account(base + 1)])
        .await?
    {
        assert!(
            outcome.result.is_success(),
            "create account: {}",
            outcome.result
        );
    }
    let outcome = client
        .submit_transfer(Transfer {
            id: base + 2,
            debit_account_id: base,
            credit_account_id: base + 1,
            amount: 5,
            ledger: 1,
            code: 1,
            ..Default::default()
        })
        .await?;
    assert_eq!(outcome.result, CreateTransferResult::Ok);
    let read = client
        .lookup_transfer(base + 2, Consistency::Linearizable)
        .await?
        .ok_or("the transfer was acknowledged but is not found")?;
    assert_eq!(read.state, TransferState::Posted);
    println!("transfer {} posted at leaf {:?}", base + 2, outcome.leaf);

    // The same client as an auditor. Here the keys come from the seeds themselves (in
    // production, from a keys file made once with `ronctl keys --out keys.json`).
    let mut keys = TrustedKeys::new();
    let mut cluster_id = None;
    for seed in &seeds {
        let answer = client.checkpoint_keys_of(seed).await?;
        for (kid, public) in answer.keys {
            keys.insert(kid, &public)?;
        }
        cluster_id = Some(answer.cluster_id);
    }
    let auditor = Client::new(config.with_trusted_keys(keys, cluster_id))?;
    let verified = auditor.verified_transfer(base + 2).await?;
    assert_eq!(verified.value.amount, 5);
    println!(
        "verified: leaf {} under checkpoint tree_size {} signed by {}",
        verified.leaf_index, verified.checkpoint.tree_size, verified.checkpoint.kid
    );
    Ok(())
}
