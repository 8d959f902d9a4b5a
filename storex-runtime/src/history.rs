//! What a session remembers for a resume (PROTOCOL.md, "Versions and resume"): per instance its
//! epoch, its version and the last diffs; per session the answers to its last mutations.

use std::collections::VecDeque;

use serde_json::value::RawValue;
use serde_json::Value;

/// The largest version: versions stay exact in a JavaScript number.
const MAX_VERSION: u64 = (1 << 53) - 1;

/// An instance's epoch, version and recent diffs.
#[derive(Debug)]
pub(crate) struct Versions {
    epoch: Box<str>,
    version: u64,
    /// The diff that led to each version (its JSON text), oldest first. The text of a diff that
    /// leaves is the buffer of the next one: a full history records without allocating.
    history: VecDeque<(u64, String)>,
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

    /// Records a non-empty diff: the version goes up by one, and the diff's text is kept within
    /// `limits` (the oldest go first; a diff larger than the byte limit is not kept, so a client
    /// that missed it gets the whole state).
    pub(crate) fn record(&mut self, diff: &[crate::diff::Change], limits: HistoryLimits) {
        if self.version == MAX_VERSION {
            // Never reached in practice; a new epoch keeps versions exact for the client.
            *self = Self::new();
        }
        self.version += 1;
        if limits.len == 0 {
            return;
        }
        // The oldest entry's buffer, when the history is full, else a new one.
        let mut text = if self.history.len() >= limits.len {
            self.history.pop_front().map(|(_, old)| {
                self.bytes -= old.len();
                old
            })
        } else {
            None
        }
        .unwrap_or_default();
        text.clear();
        // Writing changes into a string cannot fail; if it did, the diff would not be kept.
        let mut bytes = std::mem::take(&mut text).into_bytes();
        let written = serde_json::to_writer(&mut bytes, diff);
        let text = String::from_utf8(bytes).unwrap_or_default();
        if written.is_err() || text.len() > limits.bytes {
            self.history.clear();
            self.bytes = 0;
            return;
        }
        while self.bytes + text.len() > limits.bytes {
            let Some((_, old)) = self.history.pop_front() else {
                break;
            };
            self.bytes -= old.len();
        }
        self.bytes += text.len();
        self.history.push_back((self.version, text));
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
        for (_, diff) in diffs {
            // Each diff is a JSON array: its elements, without the brackets, one after another.
            let inner = diff.trim();
            let inner = inner[1..inner.len() - 1].trim();
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
pub(crate) fn empty_diff() -> Box<RawValue> {
    RawValue::from_string("[]".to_owned()).unwrap_or_else(|_| unreachable!())
}

/// The outcome of one mutation a client sent, remembered to answer it again without running it.
#[derive(Debug, Clone)]
pub(crate) struct Remembered {
    /// The connection of the session (0 the first, +1 at each resume) that answered it.
    pub(crate) connection: u32,
    pub(crate) store: &'static str,
    pub(crate) version: u64,
    /// The reply, or the error message.
    pub(crate) outcome: Result<Option<Value>, String>,
}

/// The answers to a session's last mutations, oldest first. Kept in order without an index: a
/// mutation costs a push (it sits on every round trip), and only a resumed connection looks
/// answers up, among those of earlier connections, which are the oldest.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    answers: VecDeque<(Box<str>, Remembered)>,
    /// About how many bytes they hold.
    bytes: usize,
}

/// About how many bytes `answer` for `request` holds.
fn size_of(request: &str, answer: &Remembered) -> usize {
    let outcome = match &answer.outcome {
        Ok(Some(reply)) => json_len(reply),
        Ok(None) => 0,
        Err(error) => error.len(),
    };
    // The key, the outcome, and the entry itself.
    request.len() + outcome + 64
}

/// The length of `value`'s JSON text, counted without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

impl Answers {
    /// The request id as a key (its JSON text: `"a"` and `1` stay apart).
    pub(crate) fn key(request: &Value) -> Box<str> {
        match request {
            Value::String(text) => {
                let mut key = String::with_capacity(text.len() + 1);
                key.push('"');
                key.push_str(text);
                key.into()
            }
            other => other.to_string().into(),
        }
    }

    /// Remembers `answer` for `request`, keeping the last `limit` answers.
    pub(crate) fn remember(&mut self, request: Box<str>, answer: Remembered, limit: usize) {
        if limit == 0 {
            return;
        }
        while self.answers.len() >= limit {
            let Some((old, gone)) = self.answers.pop_front() else {
                break;
            };
            self.bytes -= size_of(&old, &gone);
        }
        self.bytes += size_of(&request, &answer);
        self.answers.push_back((request, answer));
    }

    /// The answer to `request` given on a connection before `connection`: a request sent again
    /// after a resume. (A request id repeated on one connection is a new request.) The newest
    /// such answer counts.
    pub(crate) fn before(&self, request: &str, connection: u32) -> Option<&Remembered> {
        if connection == 0 {
            return None; // the session's first connection: there is no earlier one
        }
        // The earlier connections' answers are the oldest: a prefix.
        let earlier = self
            .answers
            .partition_point(|(_, answer)| answer.connection < connection);
        self.answers
            .range(..earlier)
            .rev()
            .find(|(key, _)| &**key == request)
            .map(|(_, answer)| answer)
    }

    /// About how many bytes the remembered answers hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::diff::{Change, PathSegment};

    /// `[{"a":"u","p":[key],"t":value}]`
    fn set(key: &str, value: Value) -> Vec<Change> {
        vec![Change::Update {
            path: vec![PathSegment::Key(key.into())],
            value,
        }]
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
            versions.record(&set("n", json!(n)), ROOM);
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
    fn the_byte_limit_drops_the_oldest_and_skips_a_diff_too_large() {
        let mut versions = Versions::new();
        let epoch = versions.epoch().to_owned();
        let diff = set("n", json!(1)); // `[{"a":"u","p":["n"],"t":1}]`: 27 bytes
        let limits = HistoryLimits { len: 10, bytes: 60 };
        versions.record(&diff, limits);
        versions.record(&diff, limits);
        assert_eq!(versions.bytes(), 54);
        versions.record(&diff, limits);
        assert_eq!(versions.bytes(), 54);
        assert_eq!(text(versions.since(&epoch, 0)), None);
        assert!(matches!(versions.since(&epoch, 1), Catchup::Diff(_)));
        versions.record(&set("n", json!("x".repeat(60))), limits);
        assert_eq!((versions.version(), versions.bytes()), (4, 0));
        assert_eq!(text(versions.since(&epoch, 3)), None);
        assert_eq!(text(versions.since(&epoch, 4)).as_deref(), Some("[]"));
    }

    #[test]
    fn answers_are_found_only_from_earlier_connections_and_within_the_limit() {
        let mut answers = Answers::default();
        let answer = |connection| Remembered {
            connection,
            store: "S",
            version: 1,
            outcome: Ok(None),
        };
        let key = Answers::key(&Value::from("r1"));
        assert_ne!(key, Answers::key(&Value::from(1)));
        assert_ne!(
            Answers::key(&Value::from("1")),
            Answers::key(&Value::from(1))
        );
        answers.remember(key.clone(), answer(0), 2);
        assert!(answers.before(&key, 0).is_none());
        assert!(answers.before(&key, 1).is_some());
        answers.remember(Answers::key(&Value::from("r2")), answer(0), 2);
        answers.remember(Answers::key(&Value::from("r3")), answer(0), 2);
        assert!(answers.before(&key, 1).is_none());
        assert!(answers
            .before(&Answers::key(&Value::from("r3")), 1)
            .is_some());
        assert!(answers.bytes() > 0);
    }

    #[test]
    fn the_bytes_follow_what_is_remembered() {
        let mut answers = Answers::default();
        let answer = |connection, outcome| Remembered {
            connection,
            store: "S",
            version: 1,
            outcome,
        };
        let reply = json!({"a": [1, 2, 3]});
        let reply_len = reply.to_string().len();
        answers.remember("\"a".into(), answer(0, Ok(Some(reply))), 2);
        assert_eq!(answers.bytes(), 2 + reply_len + 64);
        answers.remember("\"b".into(), answer(0, Err("no".into())), 2);
        assert_eq!(answers.bytes(), 2 + reply_len + 64 + 2 + 2 + 64);
        // A third evicts the oldest.
        answers.remember("\"c".into(), answer(1, Ok(None)), 2);
        assert_eq!(answers.bytes(), 2 + 2 + 64 + 2 + 64);
    }

    #[test]
    fn the_newest_answer_of_an_earlier_connection_counts() {
        let mut answers = Answers::default();
        let answer = |connection, version| Remembered {
            connection,
            store: "S",
            version,
            outcome: Ok(None),
        };
        answers.remember("\"r".into(), answer(0, 1), 8);
        answers.remember("\"r".into(), answer(0, 2), 8);
        answers.remember("\"r".into(), answer(1, 3), 8);
        assert_eq!(answers.before("\"r", 1).map(|a| a.version), Some(2));
        assert_eq!(answers.before("\"r", 2).map(|a| a.version), Some(3));
        assert!(answers.before("\"r", 0).is_none());
        assert!(answers.before("\"x", 2).is_none());
    }
}
