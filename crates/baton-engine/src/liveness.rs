//! Which nodes are alive. Every node writes a heartbeat about once a second
//! ([`Engine::heartbeat`]), and every claim it makes records its id: an idempotency key
//! while its request runs, a webhook delivery's or a job's lease, an attempt while the
//! PSP is called. A node silent for [`NODE_LOST_AFTER`] is taken for dead (a crash, a
//! kill), and what it held is taken over by the others within seconds. A live node's
//! claims are not: its heartbeat keeps them however long a slow handler, receiver or
//! PSP takes, so slowness alone never makes work run twice.

use std::time::Duration;

use baton_store::Claimant;

use crate::{Engine, EngineResult};

/// How often a node writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// How long a node may be silent before it is taken for dead. Several heartbeats, so a
/// slow write or a busy database does not make a live node look dead; nodes' clocks must
/// agree to well within this (NTP does).
pub const NODE_LOST_AFTER: Duration = Duration::from_secs(5);
/// Nodes silent this long are forgotten (their claims were taken over long ago).
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This node: its id is new at every start, so a restarted process never revives the
/// claims of the one that died.
pub(crate) struct Node {
    pub(crate) id: String,
    pub(crate) started_at: i64,
}

impl Engine {
    /// The id this node records with its claims.
    pub fn node_id(&self) -> &str {
        &self.node.id
    }

    /// Tells the other nodes that this one is alive (the node's heartbeat loop calls it
    /// every [`HEARTBEAT_EVERY`]; tests under a manual clock call it after moving time).
    pub async fn heartbeat(&self) -> EngineResult<()> {
        Ok(self.store.heartbeat(&self.node.id, self.node.started_at, self.now_ms()).await?)
    }

    /// This node as the maker of a claim, with the moment before which a silent node is dead.
    pub(crate) fn claimant(&self) -> Claimant<'_> {
        Claimant { node_id: &self.node.id, lost_before: self.now_ms() - NODE_LOST_AFTER.as_millis() as i64 }
    }

    /// Forgets the heartbeats of nodes gone for a day; returns how many.
    pub(crate) async fn forget_gone_nodes(&self) -> EngineResult<u64> {
        Ok(self.store.forget_nodes(self.now_ms() - FORGET_AFTER.as_millis() as i64).await?)
    }
}
