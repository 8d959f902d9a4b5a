//! What a session remembers for a resume (PROTOCOL.md, "Versions and resume"): per instance its
//! epoch, its version and the last diffs; per session the answers to its last mutations.

use std::collections::VecDeque;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::durable::SavedAnswer;

/// The largest version: versions stay exact in a JavaScript number.
const MAX_VERSION: u64 = (1 << 53) - 1;

/// An instance's epoch, version and recent diffs.
#[derive(Debug)]
pub(crate) struct Versions {
    epoch: Box<str>,
    version: u64,
    /// The diffs that led to the last versions (their JSON texts), oldest first: the newest led
    /// to `version`. The text of a diff that leaves is the buffer of the next one: a full history
    /// records without allocating.
    history: VecDeque<String>,
    bytes: usize,
}

/// How far the history reaches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryLimits {
    pub(crate) len: usize,
    pub(crate) bytes: usize,
}

/// What brings a client from the version it holds to the instance's.
#[derive(Debug)]
pub(crate) enum Catchup {
    /// These changes, in order (the missed diffs one after the other, as one diff).
    Diff(Box<RawValue>),
    /// The whole state: the client's epoch is another, or its version is out of the history.
    State,
}

fn new_epoch() -> Box<str> {
    format!("{:016x}", rand::random::<u64>()).into()
}

impl Versions {
    /// Version 0 of a new epoch.
    pub(crate) fn new() -> Self {
        Self {
            epoch: new_epoch(),
            version: 0,
            history: VecDeque::new(),
            bytes: 0,
        }
    }

    /// An instance's versions as a durable session saved them: `epoch`, `version`, and the
    /// diffs that led to the last versions (oldest first), kept within `limits`.
    pub(crate) fn restored<'a>(
        epoch: &str,
        version: u64,
        diffs: impl IntoIterator<Item = &'a str>,
        limits: HistoryLimits,
    ) -> Self {
        let mut versions = Self {
            epoch: epoch.into(),
            version,
            history: VecDeque::new(),
            bytes: 0,
        };
        for diff in diffs {
            versions.keep(diff, limits);
        }
        versions
    }

    pub(crate) fn epoch(&self) -> &str {
        &self.epoch
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The bytes of diffs held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// A non-empty diff happened: the version goes up by one. (Its text, once written, goes to
    /// [`Versions::keep`].)
    pub(crate) fn advance(&mut self) {
        if self.version == MAX_VERSION {
            // Never reached in practice; a new epoch keeps versions exact for the client.
            *self = Self::new();
        }
        self.version += 1;
    }

    /// Keeps `diff`, the JSON text of the diff that led to the current version, within `limits`
    /// (the oldest go first; a diff larger than the byte limit is not kept, so a client that
    /// missed it gets the whole state).
    pub(crate) fn keep(&mut self, diff: &str, limits: HistoryLimits) {
        if limits.len == 0 {
            return;
        }
        if diff.len() > limits.bytes {
            self.history.clear();
            self.bytes = 0;
            return;
        }
        // The oldest entry's buffer, when the history is full, else a new one.
        let mut text = String::new();
        if self.history.len() >= limits.len {
            if let Some(old) = self.history.pop_front() {
                self.bytes -= old.len();
                text = old;
            }
        }
        while self.bytes + diff.len() > limits.bytes {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
        text.clear();
        text.push_str(diff);
        self.bytes += text.len();
        self.history.push_back(text);
    }

    /// What a client holding `version` of `epoch` needs.
    pub(crate) fn since(&self, epoch: &str, version: u64) -> Catchup {
        if epoch != &*self.epoch || version > self.version {
            return Catchup::State;
        }
        if version == self.version {
            return Catchup::Diff(empty_diff());
        }
        let missed = self.version - version;
        let Ok(missed) = usize::try_from(missed) else {
            return Catchup::State;
        };
        if missed > self.history.len() {
            return Catchup::State;
        }
        let diffs = self.history.range(self.history.len() - missed..);
        let mut joined = String::from("[");
        for diff in diffs {
            // Each diff is a JSON array: its elements, without the brackets, one after another.
            let inner = diff.trim();
            let Some(inner) = inner
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
            else {
                return Catchup::State; // not a diff's text: the whole state is always right
            };
            let inner = inner.trim();
            if inner.is_empty() {
                continue;
            }
            if joined.len() > 1 {
                joined.push(',');
            }
            joined.push_str(inner);
        }
        joined.push(']');
        RawValue::from_string(joined).map_or(Catchup::State, Catchup::Diff)
    }
}

/// `[]`: no change.
fn empty_diff() -> Box<RawValue> {
    RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| unreachable!())
}

/// How a mutation a client sent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome<'a> {
    /// It ran; its reply's JSON text, if it gave one.
    Reply(Option<&'a str>),
    /// It failed with this message.
    Error(&'a str),
}

/// The outcome of one mutation a client sent, remembered to answer it again without running it.
#[derive(Debug)]
pub(crate) struct Remembered {
    /// The request id, as [`write_key`] writes it.
    request: String,
    /// The connection of the session (0 the first, +1 at each resume) that answered it.
    pub(crate) connection: u32,
    pub(crate) store: &'static str,
    pub(crate) version: u64,
    failed: bool,
    /// The reply's JSON text (empty without a reply), or the error message.
    text: String,
}

impl Remembered {
    pub(crate) fn outcome(&self) -> Outcome<'_> {
        match (self.failed, self.text.is_empty()) {
            (true, _) => Outcome::Error(&self.text),
            (false, true) => Outcome::Reply(None),
            (false, false) => Outcome::Reply(Some(&self.text)),
        }
    }

    /// About how many bytes it holds: its texts and the entry itself.
    fn size(&self) -> usize {
        self.request.len() + self.text.len() + 64
    }

    /// The answer as a durable session saves it.
    pub(crate) fn saved(&self) -> SavedAnswer {
        SavedAnswer {
            r: self.request.clone(),
            c: self.connection,
            s: self.store.to_owned(),
            v: self.version,
            f: self.failed,
            t: self.text.clone(),
        }
    }
}

/// Writes a request id as a key: a string's text after a `"`, any other value's JSON text (so
/// `"1"` and `1` stay apart: no JSON text but a string's starts with `"`).
pub(crate) fn write_key(key: &mut String, request: &Value) {
    key.clear();
    match request {
        Value::String(text) => {
            key.push('"');
            key.push_str(text);
        }
        other => {
            use std::fmt::Write;
            // `Value`'s `Display` is its JSON text; writing into a string cannot fail.
            let _ = write!(key, "{other}");
        }
    }
}

/// The answers to a session's last mutations, oldest first. Kept in order without an index: a
/// mutation costs a push (it sits on every round trip), and only a resumed connection looks
/// answers up, among those of earlier connections, which are the oldest. Once full, the entry
/// that leaves lends its buffers to the one that comes: remembering allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    answers: VecDeque<Remembered>,
    /// About how many bytes they hold.
    bytes: usize,
}

/// A mutation's answer to remember: for `request`, on `connection`, of `store` at `version`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    pub(crate) request: &'a Value,
    pub(crate) connection: u32,
    pub(crate) store: &'static str,
    pub(crate) version: u64,
    pub(crate) outcome: Outcome<'a>,
}

impl Answers {
    /// Remembers `answer`, keeping the last `limit` answers.
    pub(crate) fn remember(&mut self, answer: Answer<'_>, limit: usize) {
        if limit == 0 {
            return;
        }
        let mut recycled = None;
        while self.answers.len() >= limit {
            let Some(gone) = self.answers.pop_front() else {
                break;
            };
            self.bytes -= gone.size();
            recycled = Some(gone);
        }
        let (mut request, mut text) = recycled
            .map(|gone| (gone.request, gone.text))
            .unwrap_or_default();
        write_key(&mut request, answer.request);
        text.clear();
        let failed = match answer.outcome {
            Outcome::Reply(reply) => {
                text.push_str(reply.unwrap_or_default());
                false
            }
            Outcome::Error(error) => {
                text.push_str(error);
                true
            }
        };
        let remembered = Remembered {
            request,
            connection: answer.connection,
            store: answer.store,
            version: answer.version,
            failed,
            text,
        };
        self.bytes += remembered.size();
        self.answers.push_back(remembered);
    }

    /// The answer to `request` given on a connection before `connection`: a request sent again
    /// after a resume. (A request id repeated on one connection is a new request.) The newest
    /// such answer counts.
    pub(crate) fn before(&self, request: &Value, connection: u32) -> Option<&Remembered> {
        if connection == 0 {
            return None; // the session's first connection: there is no earlier one
        }
        // The earlier connections' answers are the oldest: a prefix.
        let earlier = self
            .answers
            .partition_point(|answer| answer.connection < connection);
        if earlier == 0 {
            return None;
        }
        // Compared in place with the keys `write_key` wrote (a string id, the common kind, is
        // not copied).
        let formatted;
        let (prefix, text) = match request {
            Value::String(text) => ("\"", text.as_str()),
            other => {
                formatted = other.to_string();
                ("", formatted.as_str())
            }
        };
        self.answers
            .range(..earlier)
            .rev()
            .find(|answer| answer.request.strip_prefix(prefix) == Some(text))
    }

    /// About how many bytes the remembered answers hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The remembered answers, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Remembered> {
        self.answers.iter()
    }

    /// The answers a durable session saved, oldest first; `store` finds the name of a store
    /// this program has (an answer of another is dropped).
    pub(crate) fn restored(
        saved: impl IntoIterator<Item = SavedAnswer>,
        store: impl Fn(&str) -> Option<&'static str>,
    ) -> Self {
        let mut answers = Self::default();
        for answer in saved {
            let Some(name) = store(&answer.s) else {
                continue;
            };
            let remembered = Remembered {
                request: answer.r,
                connection: answer.c,
                store: name,
                version: answer.v,
                failed: answer.f,
                text: answer.t,
            };
            answers.bytes += remembered.size();
            answers.answers.push_back(remembered);
        }
        answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `[{"a":"u","p":[key],"t":value}]`
    fn set(key: &str, value: Value) -> String {
        json!([{"a": "u", "p": [key], "t": value}]).to_string()
    }

    /// Advances `versions` by the diff `set(key, value)`.
    fn record(versions: &mut Versions, key: &str, value: Value, limits: HistoryLimits) {
        versions.advance();
        versions.keep(&set(key, value), limits);
    }

    /// The diff's text, or `None` for the whole state.
    fn text(catchup: Catchup) -> Option<String> {
        match catchup {
            Catchup::Diff(diff) => Some(diff.get().to_owned()),
            Catchup::State => None,
        }
    }

    const ROOM: HistoryLimits = HistoryLimits {
        len: 3,
        bytes: 1024,
    };

    #[test]
    fn versions_count_recorded_diffs_and_catch_up_from_the_history() {
        let mut versions = Versions::new();
        let epoch = versions.epoch().to_owned();
        assert_eq!(epoch.len(), 16);
        assert_eq!(text(versions.since(&epoch, 0)).as_deref(), Some("[]"));
        for n in 1..=4 {
            record(&mut versions, "n", json!(n), ROOM);
        }
        assert_eq!(versions.version(), 4);
        assert_eq!(
            text(versions.since(&epoch, 2)).as_deref(),
            Some(r#"[{"a":"u","p":["n"],"t":3},{"a":"u","p":["n"],"t":4}]"#)
        );
        assert_eq!(text(versions.since(&epoch, 4)).as_deref(), Some("[]"));
        // Three kept: version 1's diff is gone.
        assert!(matches!(versions.since(&epoch, 1), Catchup::Diff(_)));
        assert_eq!(text(versions.since(&epoch, 0)), None);
        assert_eq!(text(versions.since("another epoch", 4)), None);
        assert_eq!(text(versions.since(&epoch, 5)), None);
        assert_ne!(Versions::new().epoch(), epoch);
    }

    #[test]
    fn without_a_history_versions_still_count() {
        let mut versions = Versions::new();
        let epoch = versions.epoch().to_owned();
        let none = HistoryLimits {
            len: 0,
            bytes: 1024,
        };
        record(&mut versions, "n", json!(1), none);
        assert_eq!((versions.version(), versions.bytes()), (1, 0));
        assert_eq!(text(versions.since(&epoch, 0)), None);
        assert_eq!(text(versions.since(&epoch, 1)).as_deref(), Some("[]"));
    }

    #[test]
    fn the_byte_limit_drops_the_oldest_and_skips_a_diff_too_large() {
        let mut versions = Versions::new();
        let epoch = versions.epoch().to_owned();
        // `[{"a":"u","p":["n"],"t":1}]`: 27 bytes
        let limits = HistoryLimits { len: 10, bytes: 60 };
        record(&mut versions, "n", json!(1), limits);
        record(&mut versions, "n", json!(1), limits);
        assert_eq!(versions.bytes(), 54);
        record(&mut versions, "n", json!(1), limits);
        assert_eq!(versions.bytes(), 54);
        assert_eq!(text(versions.since(&epoch, 0)), None);
        assert!(matches!(versions.since(&epoch, 1), Catchup::Diff(_)));
        record(&mut versions, "n", json!("x".repeat(60)), limits);
        assert_eq!((versions.version(), versions.bytes()), (4, 0));
        assert_eq!(text(versions.since(&epoch, 3)), None);
        assert_eq!(text(versions.since(&epoch, 4)).as_deref(), Some("[]"));
        // A full history lends the oldest buffer: what it keeps stays exact.
        for n in 10..20 {
            record(&mut versions, "n", json!(n), limits);
        }
        assert_eq!(
            text(versions.since(&epoch, 12)).as_deref(),
            Some(r#"[{"a":"u","p":["n"],"t":18},{"a":"u","p":["n"],"t":19}]"#)
        );
    }

    /// An answer to remember: for `request`, on `connection`, at `version`.
    fn answer<'a>(
        request: &'a Value,
        connection: u32,
        version: u64,
        outcome: Outcome<'a>,
    ) -> Answer<'a> {
        Answer {
            request,
            connection,
            store: "S",
            version,
            outcome,
        }
    }

    #[test]
    fn answers_are_found_only_from_earlier_connections_and_within_the_limit() {
        let mut answers = Answers::default();
        let (r1, r2, r3) = (json!("r1"), json!("r2"), json!("r3"));
        answers.remember(answer(&r1, 0, 1, Outcome::Reply(None)), 2);
        assert!(answers.before(&r1, 0).is_none());
        assert!(answers.before(&r1, 1).is_some());
        // Ids of other JSON types are other ids.
        assert!(answers.before(&json!(["r1"]), 1).is_none());
        answers.remember(answer(&r2, 0, 1, Outcome::Reply(None)), 2);
        answers.remember(answer(&r3, 0, 1, Outcome::Reply(None)), 2);
        assert!(answers.before(&r1, 1).is_none());
        assert!(answers.before(&r3, 1).is_some());
        assert!(answers.bytes() > 0);
    }

    #[test]
    fn a_string_id_and_a_number_id_stay_apart() {
        let mut answers = Answers::default();
        let (text, number) = (json!("1"), json!(1));
        answers.remember(answer(&text, 0, 1, Outcome::Reply(Some("\"t\""))), 8);
        answers.remember(answer(&number, 0, 2, Outcome::Reply(Some("2"))), 8);
        let found = |id: &Value| answers.before(id, 1).map(|a| (a.version, a.outcome()));
        assert_eq!(found(&text), Some((1, Outcome::Reply(Some("\"t\"")))));
        assert_eq!(found(&number), Some((2, Outcome::Reply(Some("2")))));
        assert_eq!(found(&json!(1.5)), None);
        assert_eq!(found(&json!("\"1")), None);
    }

    #[test]
    fn the_bytes_follow_what_is_remembered_and_outcomes_come_back_as_given() {
        let mut answers = Answers::default();
        let (a, b, c) = (json!("a"), json!("b"), json!("c"));
        let reply = r#"{"a":[1,2,3]}"#;
        answers.remember(answer(&a, 0, 1, Outcome::Reply(Some(reply))), 2);
        assert_eq!(answers.bytes(), 2 + reply.len() + 64);
        answers.remember(answer(&b, 0, 1, Outcome::Error("no")), 2);
        assert_eq!(answers.bytes(), 2 + reply.len() + 64 + 2 + 2 + 64);
        // A third evicts the oldest, and takes its buffers: what it holds is its own.
        answers.remember(answer(&c, 1, 1, Outcome::Reply(None)), 2);
        assert_eq!(answers.bytes(), 2 + 2 + 64 + 2 + 64);
        let outcome = |id: &Value| answers.before(id, 2).map(Remembered::outcome);
        assert_eq!(outcome(&a), None);
        assert_eq!(outcome(&b), Some(Outcome::Error("no")));
        assert_eq!(outcome(&c), Some(Outcome::Reply(None)));
    }

    #[test]
    fn the_newest_answer_of_an_earlier_connection_counts() {
        let mut answers = Answers::default();
        let r = json!("r");
        answers.remember(answer(&r, 0, 1, Outcome::Reply(None)), 8);
        answers.remember(answer(&r, 0, 2, Outcome::Reply(None)), 8);
        answers.remember(answer(&r, 1, 3, Outcome::Reply(None)), 8);
        assert_eq!(answers.before(&r, 1).map(|a| a.version), Some(2));
        assert_eq!(answers.before(&r, 2).map(|a| a.version), Some(3));
        assert!(answers.before(&r, 0).is_none());
        assert!(answers.before(&json!("x"), 2).is_none());
    }
}
