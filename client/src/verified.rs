//! The Client's verified reads: the latest checkpoint fetched and accepted under the rules of
//! [`crate::verify`] and remembered per client (advanced one call at a time), then inclusion
//! proofs of transfers, accounts and leaves fetched from the node that signed it and checked
//! against it. The checks are `verify`'s pure functions; this module fetches and applies them.

use crate::client::Client;
use crate::error::Error;
use crate::trust_store::CheckpointStore;
use crate::verify::{
    account_of, check_checkpoint, check_consistency, check_inclusion, plan_advance, transfer_of,
    Advance, InclusionAnswer, LeafQuery, Verified, VerifyError,
};
use ledger::canonical::LeafEvent;
use ledger::checkpoint::SignedCheckpoint;
use ledger::proof::ConsistencyProof;
use ledger::{Account, Transfer};

/// The same proof, for the value read from its leaf.
fn with_value<T, U>(v: Verified<T>, value: U) -> Verified<U> {
    Verified {
        value,
        leaf_index: v.leaf_index,
        leaf_data: v.leaf_data,
        checkpoint: v.checkpoint,
    }
}

impl Client {
    /// Fetch the latest checkpoint and accept it under the rules of the [`verify`](crate::verify)
    /// module's documentation (signature, cluster, no replay, consistency with the last accepted
    /// one); it becomes the checkpoint this client remembers.
    pub async fn latest_verified_checkpoint(&self) -> Result<SignedCheckpoint, Error> {
        Ok(self.advance_checkpoint().await?.0)
    }

    /// The newest checkpoint this client has accepted, if any (no request is made).
    pub async fn accepted_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.shared.checkpoint.lock().await.clone()
    }

    /// Transfer `id` as applied, proven against a newly accepted checkpoint.
    pub async fn verified_transfer(&self, id: u128) -> Result<Verified<Transfer>, Error> {
        let v = self.verified(LeafQuery::Transfer(id)).await?;
        let value = transfer_of(&v.value, id)?;
        Ok(with_value(v, value))
    }

    /// Account `id` as created (the creation leaf records zero balances), proven against a
    /// newly accepted checkpoint.
    pub async fn verified_account(&self, id: u128) -> Result<Verified<Account>, Error> {
        let v = self.verified(LeafQuery::Account(id)).await?;
        let value = account_of(&v.value, id)?;
        Ok(with_value(v, value))
    }

    /// Leaf `index` (any kind, rejected events included), proven against a newly accepted
    /// checkpoint.
    pub async fn verified_leaf(&self, index: u64) -> Result<Verified<LeafEvent>, Error> {
        self.verified(LeafQuery::Index(index)).await
    }

    async fn verified(&self, query: LeafQuery) -> Result<Verified<LeafEvent>, Error> {
        let (cp, addr) = self.advance_checkpoint().await?;
        if let LeafQuery::Index(index) = query {
            if index >= cp.tree_size {
                return Err(VerifyError::BeyondCheckpoint {
                    index,
                    tree_size: cp.tree_size,
                }
                .into());
            }
        }
        let path = format!(
            "/v1/proofs/inclusion?tree_size={}&{}",
            cp.tree_size,
            query.query()
        );
        // The node that signed the checkpoint holds at least that tree.
        let (answer, _) = self
            .clone_without_batcher()
            .get_json::<InclusionAnswer>(&path, Some(addr))
            .await?;
        let (leaf_index, value) = check_inclusion(query, &cp, &answer)?;
        Ok(Verified {
            value,
            leaf_index,
            leaf_data: answer.leaf_data,
            checkpoint: cp,
        })
    }

    /// Fetch, check and remember the latest checkpoint; returns it and the node that served it.
    pub(crate) async fn advance_checkpoint(&self) -> Result<(SignedCheckpoint, String), Error> {
        let config = &self.shared.config;
        let keys = config.trusted_keys.as_ref().ok_or_else(|| {
            Error::Invalid("verification needs trusted checkpoint keys in the config".into())
        })?;
        let u = self.clone_without_batcher();
        // Held across the fetches: concurrent calls advance one at a time, so one call's
        // older fetch never races a newer accepted checkpoint into a spurious replay.
        let mut remembered = self.shared.checkpoint.lock().await;
        let (offered, addr) = u
            .get_json::<SignedCheckpoint>("/v1/checkpoints/latest", None)
            .await?;
        let cluster = config
            .cluster_id
            .as_deref()
            .or(remembered.as_ref().map(|r| r.cluster_id.as_str()));
        check_checkpoint(&offered, keys, cluster)?;
        // With a state file the client starts from the larger of the checkpoint it remembers and
        // the one the file holds — what it accepted before it restarted, or what another client
        // sharing the file accepted since — checked again (the file is not trusted blindly).
        let store = config.checkpoint_state.as_ref().map(CheckpointStore::new);
        if let Some(store) = &store {
            let cluster = match (config.cluster_id.as_deref(), remembered.as_ref()) {
                (Some(configured), _) => configured,
                (None, Some(r)) => r.cluster_id.as_str(),
                (None, None) => {
                    // No cluster configured: the state file says which clusters this client
                    // has trusted. A server offering another one is not a first use — else a
                    // rewritten history under a new cluster name would be pinned on sight.
                    let known = store.clusters()?;
                    if !known.is_empty() && !known.contains(&offered.cluster_id) {
                        return Err(VerifyError::WrongCluster {
                            expected: known.join(" or "),
                            offered: offered.cluster_id.clone(),
                        }
                        .into());
                    }
                    &offered.cluster_id
                }
            };
            if let Some(stored) = store.load(cluster)? {
                if let Some(r) = remembered.as_ref() {
                    if stored.tree_size == r.tree_size && stored.root != r.root {
                        return Err(Error::Invalid(format!(
                            "the state file remembers another root of cluster {cluster:?} at tree \
                             size {} than this client accepted: the cluster's history forked",
                            r.tree_size
                        )));
                    }
                }
                let larger = remembered
                    .as_ref()
                    .is_none_or(|r| stored.tree_size > r.tree_size);
                if larger {
                    check_checkpoint(&stored, keys, Some(cluster)).map_err(|e| {
                        Error::Invalid(format!(
                            "the checkpoint remembered in the state file does not verify: {e}"
                        ))
                    })?;
                    *remembered = Some(stored);
                }
            }
        }
        match (
            plan_advance(remembered.as_ref(), &offered)?,
            remembered.as_ref(),
        ) {
            (Advance::Same, _) => return Ok((offered, addr)),
            (Advance::Extend { from }, Some(r)) => {
                let path = format!(
                    "/v1/proofs/consistency?from={from}&to={}",
                    offered.tree_size
                );
                let (proof, _) = u
                    .get_json::<ConsistencyProof>(&path, Some(addr.clone()))
                    .await?;
                check_consistency(r, &offered, &proof)?;
            }
            _ => {}
        }
        if let Some(store) = &store {
            store.save(&offered)?;
        }
        *remembered = Some(offered.clone());
        Ok((offered, addr))
    }
}
