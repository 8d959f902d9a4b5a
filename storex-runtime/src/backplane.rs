//! For backplane authors: the seam between the hub's front and the sessions that run
//! server-side mutations.
//!
//! The hub ([`Hub`](crate::Hub)) turns every server-side mutation into a [`Target`] and a
//! [`RawMutation`] and hands them to its [`Backplane`]. The default, [`InProcess`], delivers them
//! to this process's sessions ([`LocalSessions`]). A backplane that reaches other nodes (Redis,
//! say) also carries them there, and each node runs the mutation on its own instances: commands
//! cross nodes, never diffs.

use std::fmt;

use serde_json::Value;

pub use crate::local::{HubError, LocalSessions, Topic};
pub use crate::mutation::{RawMutation, Target};
use crate::store::BoxFuture;

/// Carries server-side mutations to the sessions they are for, on this node and, for a
/// backplane that reaches them, on others.
///
/// Rules for implementors:
/// - every matching session runs the mutation exactly once: a node that receives its own
///   message back must not deliver it again;
/// - `publish` must not wait (it is called from request handlers); buffering toward other nodes
///   must be bounded, and a failure is an error value, never a panic;
/// - local delivery goes on when other nodes cannot be reached: `publish` delivers locally
///   first and then answers [`HubError::Backplane`] when the other nodes were not reached.
pub trait Backplane: fmt::Debug + Send + Sync + 'static {
    /// Called once, when the hub is built, with the sessions of this process: a backplane that
    /// receives mutations from other nodes delivers them here.
    fn attach(&self, local: &LocalSessions) {
        let _ = local;
    }

    /// Delivers `mutation` to every session `target` selects. Returns how many sessions *of
    /// this process* it was queued to; sessions on other nodes are not counted.
    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError>;

    /// Runs `mutation` in session `session`, wherever it lives, and answers its reply.
    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>>;

    /// This process now has sessions of `topic` (it had none before): a backplane that
    /// reaches other nodes starts listening for it.
    ///
    /// `subscribe` and `unsubscribe` are called in the order the changes happened, under a lock
    /// of the hub, on the thread of the session that joined or left: they must return at once
    /// (hand the change to a task of the backplane's, in order).
    fn subscribe(&self, topic: &Topic) {
        let _ = topic;
    }

    /// This process no longer has sessions of `topic`.
    fn unsubscribe(&self, topic: &Topic) {
        let _ = topic;
    }

    /// How many messages could not be published since the backplane started (for the
    /// metrics); `None`, the default, for a backplane that publishes nowhere but this process.
    fn publish_failures(&self) -> Option<u64> {
        None
    }
}

/// The default backplane: one process, every mutation delivered to its own sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcess;

impl Backplane for InProcess {
    fn publish(
        &self,
        local: &LocalSessions,
        target: &Target,
        mutation: &RawMutation,
    ) -> Result<usize, HubError> {
        Ok(local.deliver(target, mutation))
    }

    fn request(
        &self,
        local: &LocalSessions,
        session: String,
        mutation: RawMutation,
    ) -> BoxFuture<'static, Result<Option<Value>, HubError>> {
        let local = local.clone();
        Box::pin(async move { local.request(&session, mutation).await })
    }
}
