//! For session store authors: durable sessions, saved where another node can take them over.
//!
//! With [`Config::durable`](crate::Config::durable), every change of a session's durable stores
//! (`#[store(durable)]`) is saved before its answer or push is sent: a new instance's state, each
//! diff, and each remembered answer. A client whose node died or was stopped resumes on another
//! node, which takes the session over from the saved record: same state, the missed diffs,
//! requests sent again answered once (PROTOCOL.md, "Versions and resume").
//!
//! A [`SessionStore`] keeps one record per session: a map of fields the runtime writes and reads
//! back (their layout is the runtime's), guarded by a *lease*: each takeover raises it, and a
//! write under an older lease is refused ([`Saved::Fenced`]), so a node that lost a session
//! cannot overwrite it. The Redis implementation is
//! [`RedisSessions`](crate::redis::RedisSessions) (feature `redis`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::BoxFuture;

/// Where durable sessions are saved.
///
/// Rules for implementors: a write is applied whole or not at all; `save`, `take` and `forget`
/// are each atomic with respect to the lease; every call is bounded in time (a failure is an
/// error value, never a wait without end).
pub trait SessionStore: fmt::Debug + Send + Sync + 'static {
    /// Applies `write` when the record's lease is `write.lease` (or, with `write.create`, when
    /// there is no record: it is made with that lease), and keeps the record for `write.ttl`.
    fn save(&self, write: Write) -> BoxFuture<'static, Result<Saved, SessionStoreError>>;

    /// Takes session `session` over: raises its lease by one and answers the new lease with
    /// the record's fields (without the lease), keeping it for `ttl`; `None` when there is no
    /// record.
    fn take(
        &self,
        session: &str,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<Option<Taken>, SessionStoreError>>;

    /// Deletes the record when its lease is still `lease` (the session ended); whether it did.
    fn forget(
        &self,
        session: &str,
        lease: u64,
    ) -> BoxFuture<'static, Result<bool, SessionStoreError>>;

    /// Session `session` lives in this process (`Some(ttl)`) or no longer does (`None`): while
    /// it lives, its record must not expire, even when nothing changes.
    fn live(&self, session: &str, ttl: Option<Duration>);
}

/// Changes to one session's record, in order: fields set, then fields deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Write {
    /// The session id.
    pub session: String,
    /// The lease the writer holds.
    pub lease: u64,
    /// Whether to make the record when there is none.
    pub create: bool,
    /// How long the record is kept after this write.
    pub ttl: Duration,
    /// Fields set (name, value).
    pub set: Vec<(String, String)>,
    /// Fields deleted.
    pub delete: Vec<String>,
}

/// What became of a [`Write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Saved {
    /// Applied.
    Stored,
    /// Another node took the session over (the lease is higher): nothing was written.
    Fenced,
    /// There is no record (it expired, or was never made) and `create` was not asked.
    Missing,
}

/// A session taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Taken {
    /// The new lease.
    pub lease: u64,
    /// The record's fields.
    pub fields: HashMap<String, String>,
}

impl Taken {
    /// A taken session: `lease` and `fields`.
    pub fn new(lease: u64, fields: HashMap<String, String>) -> Self {
        Self { lease, fields }
    }
}

/// Why a session store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SessionStoreError(pub String);

// ---------------------------------------------------------------------------------------------
// The record's layout (the runtime's; a store only keeps fields)
// ---------------------------------------------------------------------------------------------

/// Versions between two snapshots of an instance's state: a write carries a diff, and every this
/// many versions the whole state too, so that a takeover replays at most this many diffs.
pub(crate) const SNAPSHOT_EVERY: u64 = 64;

/// The durable stores in join order: a JSON array of names.
pub(crate) const ORDER: &str = "o";

/// The field of `store`'s snapshot.
pub(crate) fn snapshot_field(store: &str) -> String {
    format!("i:{store}")
}

/// The field of the diff that led `store` to `version`.
pub(crate) fn diff_field(store: &str, version: u64) -> String {
    format!("d:{store}:{version}")
}

/// The field of remembered answer number `seq`.
pub(crate) fn answer_field(seq: u64) -> String {
    format!("a:{seq}")
}

/// An instance's state at version `base`, and what it was made with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) key: Option<String>,
    pub(crate) params: Value,
    pub(crate) epoch: String,
    pub(crate) base: u64,
    pub(crate) state: Value,
}

/// A remembered answer as saved.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedAnswer {
    /// The request id's key (`history::request_key`).
    pub(crate) r: String,
    /// The connection of the session it was answered on.
    pub(crate) c: u32,
    pub(crate) s: String,
    pub(crate) v: u64,
    /// Whether it failed (then `t` is the error) or ran (`t` is the reply's JSON text, or empty).
    pub(crate) f: bool,
    pub(crate) t: String,
}

/// A durable session's side of the connection: the lease it holds, and the changes not saved
/// yet.
pub(crate) struct DurableSession {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) session: String,
    pub(crate) lease: u64,
    pub(crate) ttl: Duration,
    /// Whether the record exists (the first write makes it).
    pub(crate) created: bool,
    /// The number of the next remembered answer.
    pub(crate) next_answer: u64,
    /// How many answers are remembered: the one that many back is deleted.
    pub(crate) answers_kept: u64,
    /// How many diffs back are kept for a resume.
    pub(crate) diffs_kept: u64,
    /// A save failed: the next one writes everything again.
    pub(crate) resync: bool,
    pub(crate) set: Vec<(String, String)>,
    pub(crate) delete: Vec<String>,
}

impl fmt::Debug for DurableSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableSession")
            .field("session", &self.session)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl DurableSession {
    pub(crate) fn new(
        store: Arc<dyn SessionStore>,
        session: &str,
        lease: u64,
        ttl: Duration,
        answers_kept: usize,
        diffs_kept: usize,
    ) -> Self {
        store.live(session, Some(ttl));
        Self {
            store,
            session: session.to_owned(),
            lease,
            ttl,
            created: lease > 1,
            next_answer: 0,
            answers_kept: answers_kept as u64,
            diffs_kept: diffs_kept as u64,
            resync: false,
            set: Vec::new(),
            delete: Vec::new(),
        }
    }

    /// Sets `field` to `value` in the next write.
    pub(crate) fn set(&mut self, field: String, value: String) {
        self.set.push((field, value));
    }

    /// `store` reached `version` through `diff`; the diff that falls out of what a takeover
    /// needs is deleted.
    pub(crate) fn diff(&mut self, store: &str, version: u64, diff: &str) {
        self.set(diff_field(store, version), diff.to_owned());
        let kept = self.diffs_kept.max(1) + SNAPSHOT_EVERY;
        if let Some(old) = version.checked_sub(kept).filter(|old| *old > 0) {
            self.delete.push(diff_field(store, old));
        }
    }

    /// Remembers an answer; the one that falls out of the limit is deleted.
    pub(crate) fn answer(&mut self, answer: &SavedAnswer) {
        let seq = self.next_answer;
        self.next_answer += 1;
        if let Ok(text) = serde_json::to_string(answer) {
            self.set(answer_field(seq), text);
        }
        if let Some(old) = seq.checked_sub(self.answers_kept) {
            self.delete.push(answer_field(old));
        }
    }

    /// The changes since the last write, if any.
    pub(crate) fn take_write(&mut self) -> Option<Write> {
        if self.set.is_empty() && self.delete.is_empty() {
            return None;
        }
        Some(Write {
            session: self.session.clone(),
            lease: self.lease,
            create: !self.created,
            ttl: self.ttl,
            set: std::mem::take(&mut self.set),
            delete: std::mem::take(&mut self.delete),
        })
    }

    /// The session ended: its record goes (unless another node holds it now).
    pub(crate) async fn forget(&self) {
        if let Err(error) = self.store.forget(&self.session, self.lease).await {
            tracing::warn!(session = %self.session, %error, "a durable session's record could not be deleted; it expires with its TTL");
        }
    }
}

impl Drop for DurableSession {
    fn drop(&mut self) {
        self.store.live(&self.session, None);
    }
}

/// A session's record read back: per durable store its snapshot and the diffs after it, and
/// the remembered answers; `Err` says what does not read.
#[derive(Debug)]
pub(crate) struct Record {
    /// The durable stores in join order.
    pub(crate) order: Vec<String>,
    pub(crate) snapshots: HashMap<String, Snapshot>,
    /// Per store, (version, diff text), in version order.
    pub(crate) diffs: HashMap<String, Vec<(u64, String)>>,
    pub(crate) answers: Vec<(u64, SavedAnswer)>,
}

impl Record {
    pub(crate) fn read(fields: HashMap<String, String>) -> Result<Self, String> {
        let mut record = Record {
            order: Vec::new(),
            snapshots: HashMap::new(),
            diffs: HashMap::new(),
            answers: Vec::new(),
        };
        for (field, value) in fields {
            if field == ORDER {
                record.order = serde_json::from_str(&value)
                    .map_err(|error| format!("the store order does not read: {error}"))?;
            } else if let Some(store) = field.strip_prefix("i:") {
                let snapshot = serde_json::from_str(&value)
                    .map_err(|error| format!("the snapshot of {store} does not read: {error}"))?;
                record.snapshots.insert(store.to_owned(), snapshot);
            } else if let Some(rest) = field.strip_prefix("d:") {
                let parsed = rest
                    .rsplit_once(':')
                    .and_then(|(store, version)| Some((store, version.parse::<u64>().ok()?)));
                let Some((store, version)) = parsed else {
                    return Err(format!("a diff field that does not read: {field}"));
                };
                record
                    .diffs
                    .entry(store.to_owned())
                    .or_default()
                    .push((version, value));
            } else if let Some(seq) = field.strip_prefix("a:") {
                let seq = seq
                    .parse()
                    .map_err(|_| format!("an answer field that does not read: {field}"))?;
                let answer = serde_json::from_str(&value)
                    .map_err(|error| format!("answer {seq} does not read: {error}"))?;
                record.answers.push((seq, answer));
            }
        }
        for diffs in record.diffs.values_mut() {
            diffs.sort_unstable_by_key(|(version, _)| *version);
        }
        record.answers.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(record)
    }
}

/// `snapshot`'s state brought to the last version of `diffs` (those after its base, which must
/// follow each other); the state and its version.
pub(crate) fn replay(snapshot: &Snapshot, diffs: &[(u64, String)]) -> Result<(Value, u64), String> {
    let mut state = snapshot.state.clone();
    let mut version = snapshot.base;
    for (at, text) in diffs.iter().filter(|(at, _)| *at > snapshot.base) {
        if *at != version + 1 {
            return Err(format!(
                "the diff to version {} is missing (the next saved is {at})",
                version + 1
            ));
        }
        let changes: Vec<crate::diff::Change> = serde_json::from_str(text)
            .map_err(|error| format!("the diff to version {at} does not read: {error}"))?;
        crate::diff::apply(&mut state, &changes)
            .map_err(|error| format!("the diff to version {at} does not apply: {error}"))?;
        version = *at;
    }
    Ok((state, version))
}

/// The texts of the saved diffs that lead, one after another, to `version` (oldest first): the
/// history a resume can use. Diffs before a gap (a save that failed) are left out.
pub(crate) fn leading_to(diffs: &[(u64, String)], version: u64) -> Vec<&str> {
    let mut run = Vec::new();
    let mut expected = version;
    for (at, text) in diffs.iter().rev() {
        if *at == expected && expected > 0 {
            run.push(text.as_str());
            expected -= 1;
        } else if *at < expected {
            break;
        }
    }
    run.reverse();
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(state: Value, base: u64) -> Snapshot {
        Snapshot {
            key: None,
            params: json!({}),
            epoch: "e".into(),
            base,
            state,
        }
    }

    fn set(value: i64) -> String {
        json!([{"a": "u", "p": ["n"], "t": value}]).to_string()
    }

    #[test]
    fn a_snapshot_and_the_diffs_after_it_give_the_last_state() {
        let diffs = vec![(4, set(4)), (5, set(5)), (6, set(6)), (7, set(7))];
        let (state, version) = replay(&snapshot(json!({"n": 5}), 5), &diffs).unwrap_or_default();
        assert_eq!((state, version), (json!({"n": 7}), 7));
        let gap = vec![(6, set(6)), (8, set(8))];
        let error = replay(&snapshot(json!({"n": 5}), 5), &gap).err();
        assert_eq!(
            error.as_deref(),
            Some("the diff to version 7 is missing (the next saved is 8)")
        );
    }

    #[test]
    fn the_history_is_the_run_of_diffs_that_reaches_the_version() {
        let diffs = vec![
            (1, set(1)),
            (3, set(3)),
            (4, set(4)),
            (5, set(5)),
            (6, set(6)),
        ];
        assert_eq!(leading_to(&diffs, 5), [set(3), set(4), set(5)]);
        assert_eq!(leading_to(&diffs, 2), Vec::<String>::new());
        assert_eq!(leading_to(&diffs, 1), [set(1)]);
    }

    #[test]
    fn a_record_reads_back_in_order() {
        let answer = SavedAnswer {
            r: "\"r1".into(),
            c: 2,
            s: "S".into(),
            v: 3,
            f: false,
            t: "1".into(),
        };
        let fields: HashMap<String, String> = [
            (ORDER.to_owned(), json!(["S"]).to_string()),
            (
                snapshot_field("S"),
                serde_json::to_string(&snapshot(json!({"n": 0}), 0)).unwrap_or_default(),
            ),
            (diff_field("S", 2), set(2)),
            (diff_field("S", 1), set(1)),
            (
                answer_field(10),
                serde_json::to_string(&answer).unwrap_or_default(),
            ),
            ("lease".to_owned(), "3".to_owned()),
        ]
        .into_iter()
        .collect();
        let record = Record::read(fields).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(record.order, ["S"]);
        let versions: Vec<u64> = record.diffs["S"].iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(record.answers.len(), 1);
        let (state, version) =
            replay(&record.snapshots["S"], &record.diffs["S"]).unwrap_or_default();
        assert_eq!((state, version), (json!({"n": 2}), 2));
    }

    #[test]
    fn a_session_deletes_what_falls_out_of_its_limits() {
        #[derive(Debug)]
        struct Nowhere;
        impl SessionStore for Nowhere {
            fn save(&self, _: Write) -> BoxFuture<'static, Result<Saved, SessionStoreError>> {
                Box::pin(async { Ok(Saved::Stored) })
            }
            fn take(
                &self,
                _: &str,
                _: Duration,
            ) -> BoxFuture<'static, Result<Option<Taken>, SessionStoreError>> {
                Box::pin(async { Ok(None) })
            }
            fn forget(
                &self,
                _: &str,
                _: u64,
            ) -> BoxFuture<'static, Result<bool, SessionStoreError>> {
                Box::pin(async { Ok(true) })
            }
            fn live(&self, _: &str, _: Option<Duration>) {}
        }
        let mut session =
            DurableSession::new(Arc::new(Nowhere), "s", 1, Duration::from_secs(1), 2, 3);
        let answer = SavedAnswer {
            r: "1".into(),
            c: 0,
            s: "S".into(),
            v: 0,
            f: false,
            t: String::new(),
        };
        for _ in 0..3 {
            session.answer(&answer);
        }
        let kept = 3 + SNAPSHOT_EVERY;
        session.diff("S", kept, "[]");
        session.diff("S", kept + 1, "[]");
        let write = session.take_write().unwrap_or_else(|| panic!("a write"));
        assert!(write.create);
        assert_eq!(write.delete, [answer_field(0), diff_field("S", 1)]);
        assert_eq!(write.set.len(), 5);
        assert!(session.take_write().is_none());
    }
}
