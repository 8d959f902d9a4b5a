//! The wire protocol (PROTOCOL.md): client messages decoded, server messages encoded, close codes.
//!
//! It knows JSON and the message shapes only: no web framework, no session.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::diff::Change;

/// What a client sent: one text frame, one JSON object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    /// `{"type":"join","store":S,"data":PARAMS,"request":R}`
    Join {
        /// The store's name; missing or null closes the socket with 4000.
        #[serde(default)]
        store: Option<String>,
        /// The join params.
        #[serde(default)]
        data: Option<Value>,
        /// The client's id of this request, echoed in the answer.
        #[serde(default)]
        request: Option<Value>,
    },
    /// `{"type":"mutation","store":S,"session":SESSION,"data":{"name":N,"data":[...]},"request":R}`
    Mutation {
        /// The store's name; missing or null closes the socket with 4000.
        #[serde(default)]
        store: Option<String>,
        /// The session the client believes it is in; must be this connection's if present.
        #[serde(default)]
        session: Option<String>,
        /// The mutation's name and arguments.
        data: MutationCall,
        /// The client's id of this request, echoed in the answer.
        #[serde(default)]
        request: Option<Value>,
    },
    /// `{"type":"ping","request":R}`
    Ping {
        /// The client's id of this request, echoed in the pong.
        #[serde(default)]
        request: Option<Value>,
    },
    /// `{"type":"resume","session":ID,"token":T,"stores":[{"store":S,"epoch":E,"version":V}],"request":R}`:
    /// the first message of a connection that takes back a detached session.
    Resume {
        /// The session to take back.
        session: String,
        /// Its resume token.
        token: String,
        /// What the client holds of each store.
        #[serde(default)]
        stores: Vec<HeldStore>,
        /// The client's id of this request, echoed in the answer.
        #[serde(default)]
        request: Option<Value>,
    },
}

/// What a resuming client holds of one store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeldStore {
    /// The store's name.
    pub store: String,
    /// The epoch of the instance the client's state came from.
    pub epoch: String,
    /// The version of that instance the client's state is at.
    pub version: u64,
}

/// The `data` of a mutation message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MutationCall {
    /// The mutation's name.
    pub name: String,
    /// The arguments of `commit(name, ...args)`; a missing array means none.
    #[serde(default)]
    pub data: Vec<Value>,
}

impl ClientMessage {
    /// Decodes one text frame; `None` for anything that is not one of the message shapes
    /// (answered by closing with [`CloseCode::MALFORMED`]).
    pub fn decode(text: &str) -> Option<Self> {
        Fields::decode(text).or_else(|| serde_json::from_str(text).ok())
    }
}

/// Every field a client message may carry, read in one pass: the fast path of
/// [`ClientMessage::decode`]. serde's internally tagged enums first copy each field into an
/// intermediate tree and then deserialize the variant from it, which was the largest cost storex
/// added to a mutation's round trip (see docs/BENCHMARKS.md).
///
/// It gives the tagged enum's result for every frame the enum accepts; anything it does not
/// accept (a field of an unexpected type that the variant would ignore, a malformed frame) goes to
/// the tagged enum. One difference, on purpose: fields it does not read are skipped without being
/// built, so a value nested deeper than serde_json's recursion limit there is accepted (the enum,
/// which buffers every field, refuses it).
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default)]
    store: Option<String>,
    #[serde(default)]
    session: Option<String>,
    /// Kept as text until the type is known: a mutation's data goes straight into a
    /// [`MutationCall`], without a JSON tree in between.
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    request: Option<Value>,
}

impl Fields<'_> {
    fn decode(text: &str) -> Option<ClientMessage> {
        let fields: Fields<'_> = serde_json::from_str(text).ok()?;
        match &*fields.kind {
            "join" => Some(ClientMessage::Join {
                store: fields.store,
                data: match fields.data {
                    Some(data) => serde_json::from_str(data.get()).ok()?,
                    None => None,
                },
                request: fields.request,
            }),
            "mutation" => Some(ClientMessage::Mutation {
                store: fields.store,
                session: fields.session,
                data: serde_json::from_str(fields.data?.get()).ok()?,
                request: fields.request,
            }),
            "ping" => Some(ClientMessage::Ping {
                request: fields.request,
            }),
            _ => None,
        }
    }
}

/// What the server sends: one text frame each.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage<'a> {
    /// The answer to a join: the full state.
    Join {
        /// The store's name.
        store: &'a str,
        /// The connection's session id.
        session: &'a str,
        /// The whole state.
        data: &'a Value,
        /// The request's id.
        request: &'a Option<Value>,
        /// The instance's epoch (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        /// The version `data` is at (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// A resume token for the session (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
    },
    /// The answer to a mutation (with `request`), or a push from the server (without).
    Mutation {
        /// The store's name.
        store: &'a str,
        /// The connection's session id.
        session: &'a str,
        /// What changed.
        diff: &'a [Change],
        /// The mutation's reply, if it gave one.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<&'a Value>,
        /// The request's id; absent on pushes.
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<&'a Value>,
        /// The instance's epoch (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        /// The version the diff leads to (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// Whether this answers again a mutation answered on an earlier connection of the
        /// session (it did not run again; `diff` is empty).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
    },
    /// An error answer to a join or a mutation.
    Error {
        /// The store's name.
        store: &'a str,
        /// The connection's session id.
        session: &'a str,
        /// What went wrong.
        error: &'a str,
        /// The request's id.
        request: &'a Option<Value>,
        /// The instance's epoch, for a mutation of a joined store (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<&'a str>,
        /// Its unchanged version (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// Whether this answers again a mutation answered on an earlier connection.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replayed: bool,
    },
    /// The answer to a resume (an addition of storex-rs).
    Resume {
        /// The session of the connection from now on: the resumed one, or the connection's own
        /// when the resume is refused.
        session: &'a str,
        /// Whether the session was taken back.
        resumed: bool,
        /// Why not.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
        /// A fresh resume token of the resumed session.
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
        /// The request's id.
        request: &'a Option<Value>,
        /// Per store, how the client catches up.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        stores: &'a [ResumedStore<'a>],
    },
    /// The answer to an HTTP join: the full state (no request, no connection).
    #[serde(rename = "join")]
    HttpJoin {
        /// The store's name.
        store: &'a str,
        /// Always `"SSR"`.
        session: &'a str,
        /// The whole state.
        data: &'a Value,
    },
    /// An HTTP join's refusal.
    #[serde(rename = "error")]
    HttpError {
        /// The store's name.
        store: &'a str,
        /// Always `"SSR"`.
        session: &'a str,
        /// What went wrong.
        error: &'a str,
    },
    /// The answer to a ping (keys as the original sends them).
    Pong {
        /// Always null.
        store: Option<()>,
        /// Always null.
        data: Option<()>,
        /// The request's id.
        request: &'a Option<Value>,
        /// Always null.
        session: Option<()>,
        /// A fresh resume token (an addition of storex-rs).
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
    },
}

/// One store in a resume answer.
#[derive(Debug, Clone, Serialize)]
pub struct ResumedStore<'a> {
    /// The store's name.
    pub store: &'a str,
    /// `false` when the session does not hold it (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<bool>,
    /// The instance's epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
    /// The instance's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// The changes from the client's version to `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<&'a RawValue>,
    /// The whole state at `version`, when the changes are not at hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'a Value>,
}

impl ServerMessage<'_> {
    /// The JSON text of the frame.
    pub fn encode(&self) -> String {
        // Serializing these shapes cannot fail: every key is a string and every value is JSON.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// JSON for a field of a [`MutationFrame`]: a value to serialize, or its text, serialized before.
#[derive(Debug)]
pub(crate) enum Json<'a, T: ?Sized> {
    /// Serialized while the frame is written.
    Value(&'a T),
    /// JSON text, written as it is.
    Text(&'a str),
}

// Copied as the references they hold are, whatever `T` is (a derive would ask `T: Copy`).
impl<T: ?Sized> Clone for Json<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Json<'_, T> {}

/// A mutation answer or a push, the frame that sits on every round trip, written field by field
/// with the same text as [`ServerMessage::Mutation`]'s. Written this way, the frame tells where
/// its diff and its message are: the session keeps those texts for a resume (PROTOCOL.md,
/// "Versions and resume") without serializing them a second time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MutationFrame<'a> {
    pub(crate) store: &'a str,
    pub(crate) session: &'a str,
    pub(crate) diff: Json<'a, [Change]>,
    pub(crate) message: Option<Json<'a, Value>>,
    pub(crate) request: Option<&'a Value>,
    pub(crate) epoch: Option<&'a str>,
    pub(crate) version: Option<u64>,
    pub(crate) replayed: bool,
}

/// A written [`MutationFrame`]: its text, and where the diff and the message are in it.
#[derive(Debug)]
pub(crate) struct WrittenFrame {
    pub(crate) text: String,
    diff: std::ops::Range<usize>,
    message: Option<std::ops::Range<usize>>,
}

impl WrittenFrame {
    /// The diff's JSON text.
    pub(crate) fn diff(&self) -> &str {
        self.text.get(self.diff.clone()).unwrap_or("[]")
    }

    /// The message's JSON text, if the frame has one.
    pub(crate) fn message(&self) -> Option<&str> {
        self.message.clone().and_then(|range| self.text.get(range))
    }
}

impl<'a> MutationFrame<'a> {
    /// A server-side mutation's push: its diff, no message, no request.
    pub(crate) fn push(
        store: &'a str,
        session: &'a str,
        diff: &'a [Change],
        epoch: &'a str,
        version: u64,
    ) -> Self {
        Self {
            store,
            session,
            diff: Json::Value(diff),
            message: None,
            request: None,
            epoch: Some(epoch),
            version: Some(version),
            replayed: false,
        }
    }

    /// Writes the frame.
    pub(crate) fn encode(&self) -> WrittenFrame {
        /// Serializing a string, a change or a JSON value cannot fail: every key is a string.
        fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
            let _ = serde_json::to_writer(&mut *out, value);
        }
        fn put_json<T: Serialize + ?Sized>(
            out: &mut Vec<u8>,
            json: Json<'_, T>,
        ) -> std::ops::Range<usize> {
            let start = out.len();
            match json {
                Json::Value(value) => put(out, value),
                Json::Text(text) => out.extend_from_slice(text.as_bytes()),
            }
            start..out.len()
        }
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(br#"{"type":"mutation","store":"#);
        put(&mut out, self.store);
        out.extend_from_slice(br#","session":"#);
        put(&mut out, self.session);
        out.extend_from_slice(br#","diff":"#);
        let diff = put_json(&mut out, self.diff);
        let message = self.message.map(|message| {
            out.extend_from_slice(br#","message":"#);
            put_json(&mut out, message)
        });
        if let Some(request) = self.request {
            out.extend_from_slice(br#","request":"#);
            put(&mut out, request);
        }
        if let Some(epoch) = self.epoch {
            out.extend_from_slice(br#","epoch":"#);
            put(&mut out, epoch);
        }
        if let Some(version) = self.version {
            out.extend_from_slice(br#","version":"#);
            put(&mut out, &version);
        }
        if self.replayed {
            out.extend_from_slice(br#","replayed":true"#);
        }
        out.push(b'}');
        // Every piece is JSON text, and text given as `Json::Text` came from a `&str`.
        let text = String::from_utf8(out).unwrap_or_default();
        WrittenFrame {
            text,
            diff,
            message,
        }
    }
}

/// A close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close code.
    pub code: u16,
    /// The reason, at most [`MAX_CLOSE_REASON`] bytes.
    pub reason: String,
}

/// The most bytes a close reason may hold (RFC 6455: 125 bytes of payload, 2 of them the code).
pub const MAX_CLOSE_REASON: usize = 123;

/// Close codes the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode;

impl CloseCode {
    /// Normal closure (idle timeout, server shutting the session).
    pub const NORMAL: u16 = 1000;
    /// The server is stopping (a graceful stop).
    pub const GOING_AWAY: u16 = 1001;
    /// A WebSocket protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The frame was not JSON, not a known message shape, binary, or a text that is not UTF-8.
    pub const MALFORMED: u16 = 1007;
    /// The client broke a server policy (it does not read its messages, or its origin is refused).
    pub const POLICY: u16 = 1008;
    /// A frame larger than the configured maximum.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed unexpectedly while answering this connection (a panic outside init and
    /// mutations); other connections go on.
    pub const INTERNAL: u16 = 1011;
    /// A message without a store.
    pub const STORE_NOT_SET: u16 = 4000;
    /// A message naming a store that does not exist.
    pub const STORE_NOT_DEFINED: u16 = 4001;
}

impl Close {
    /// A close with `code` and `reason`, the reason cut on a character boundary to fit a frame.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_CLOSE_REASON {
            let mut end = MAX_CLOSE_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self { code, reason }
    }

    /// 4000 `Store is not set.`
    pub fn store_not_set() -> Self {
        Self::new(CloseCode::STORE_NOT_SET, "Store is not set.")
    }

    /// 4001 `Store 'NAME' is not defined or can't be compiled.`
    pub fn store_not_defined(name: &str) -> Self {
        Self::new(
            CloseCode::STORE_NOT_DEFINED,
            format!("Store '{name}' is not defined or can't be compiled."),
        )
    }

    /// 1009 `Frame too large.`
    pub fn too_big() -> Self {
        Self::new(CloseCode::TOO_BIG, "Frame too large.")
    }

    /// 1007 `Payload is malformed.`
    pub fn malformed() -> Self {
        Self::new(CloseCode::MALFORMED, "Payload is malformed.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_three_client_messages() {
        let join = r#"{"type":"join","store":"S","data":{"a":1},"request":"r1","session":"x"}"#;
        assert_eq!(
            ClientMessage::decode(join),
            Some(ClientMessage::Join {
                store: Some("S".into()),
                data: Some(json!({"a": 1})),
                request: Some(json!("r1")),
            })
        );
        let mutation = r#"{"type":"mutation","store":"S","session":"x","data":{"name":"set","data":[10]},"request":"r2"}"#;
        assert_eq!(
            ClientMessage::decode(mutation),
            Some(ClientMessage::Mutation {
                store: Some("S".into()),
                session: Some("x".into()),
                data: MutationCall {
                    name: "set".into(),
                    data: vec![json!(10)]
                },
                request: Some(json!("r2")),
            })
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"ping","request":"r3"}"#),
            Some(ClientMessage::Ping {
                request: Some(json!("r3"))
            })
        );
        assert_eq!(
            ClientMessage::decode(r#"{"type":"join","store":null}"#),
            Some(ClientMessage::Join {
                store: None,
                data: None,
                request: None
            })
        );
    }

    #[test]
    fn the_fast_path_decodes_as_the_tagged_enum() {
        let tagged = |text: &str| serde_json::from_str::<ClientMessage>(text).ok();
        for text in [
            r#"{"type":"join","store":"S","data":{"a":[1,2.5,"x"]},"request":"r1","session":"x"}"#,
            r#"{"request":7,"data":null,"store":null,"type":"join"}"#,
            r#"{"type":"mutation","store":"S","session":"x","data":{"name":"set","data":[10,{"b":null}],"extra":1},"request":{"id":1}}"#,
            r#"{"type":"mutation","store":"S","data":{"name":"increase"}}"#,
            r#"{"type":"ping","request":"r3","data":[1],"other":true}"#,
            r#"{"type":"ping"}"#,
            // accepted by the tagged enum only: the fast path hands them over
            r#"{"type":"ping","request":"r","store":5,"session":[]}"#,
            r#"{"type":"join","store":"S","session":{"not":"a string"}}"#,
            // refused by both
            r#"{"type":"mutation","store":"S","data":null}"#,
            r#"{"type":"mutation","store":"S","data":{"name":"x","data":null}}"#,
            r#"{"type":"join","store":"a","store":"b"}"#,
            r#"{"type":"join","type":"join"}"#,
            r#"{"type":"Join"}"#,
            r#"{"type":"join","store":"S"} trailing"#,
        ] {
            assert_eq!(ClientMessage::decode(text), tagged(text), "{text}");
        }
        // What clients send takes the fast path.
        for text in [
            r#"{"type":"join","store":"S","data":{},"request":"r1"}"#,
            r#"{"type":"mutation","store":"S","session":"x","data":{"name":"set","data":[10]},"request":"r2"}"#,
            r#"{"type":"ping","request":"r3"}"#,
        ] {
            assert!(Fields::decode(text).is_some(), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        for text in [
            "not json",
            "[]",
            "{}",
            r#"{"type":"dance"}"#,
            r#"{"type":"mutation","store":"S"}"#,
            r#"{"type":"mutation","store":"S","data":{"name":"x","data":{"a":1}}}"#,
            r#"{"type":"join","store":5}"#,
        ] {
            assert_eq!(ClientMessage::decode(text), None, "{text}");
        }
    }

    #[test]
    fn encodes_answers_as_the_protocol_spells_them() {
        let request = Some(json!("r1"));
        let state = json!({"counter": 0});
        let join = ServerMessage::Join {
            store: "S",
            session: "id",
            data: &state,
            request: &request,
            epoch: None,
            version: None,
            token: None,
        };
        assert_eq!(
            join.encode(),
            r#"{"type":"join","store":"S","session":"id","data":{"counter":0},"request":"r1"}"#
        );
        let reply = json!("message");
        let mutation = ServerMessage::Mutation {
            store: "S",
            session: "id",
            diff: &[],
            message: Some(&reply),
            request: request.as_ref(),
            epoch: None,
            version: None,
            replayed: false,
        };
        assert_eq!(
            mutation.encode(),
            r#"{"type":"mutation","store":"S","session":"id","diff":[],"message":"message","request":"r1"}"#
        );
        let push = ServerMessage::Mutation {
            store: "S",
            session: "id",
            diff: &[],
            message: None,
            request: None,
            epoch: None,
            version: None,
            replayed: false,
        };
        assert_eq!(
            push.encode(),
            r#"{"type":"mutation","store":"S","session":"id","diff":[]}"#
        );
        let error = ServerMessage::Error {
            store: "S",
            session: "id",
            error: "No",
            request: &request,
            epoch: None,
            version: None,
            replayed: false,
        };
        assert_eq!(
            error.encode(),
            r#"{"type":"error","store":"S","session":"id","error":"No","request":"r1"}"#
        );
        let pong = ServerMessage::Pong {
            store: None,
            data: None,
            request: &request,
            session: None,
            token: None,
        };
        assert_eq!(
            pong.encode(),
            r#"{"type":"pong","store":null,"data":null,"request":"r1","session":null}"#
        );
    }

    #[test]
    fn the_additions_are_extra_fields_and_one_message() {
        let request = Some(json!("r1"));
        let state = json!({"counter": 3});
        let join = ServerMessage::Join {
            store: "S",
            session: "id",
            data: &state,
            request: &request,
            epoch: Some("e"),
            version: Some(3),
            token: Some("9.ab"),
        };
        assert_eq!(
            join.encode(),
            r#"{"type":"join","store":"S","session":"id","data":{"counter":3},"request":"r1","epoch":"e","version":3,"token":"9.ab"}"#
        );
        let diff = RawValue::from_string(r#"[{"a":"u","p":["counter"],"t":4}]"#.into())
            .unwrap_or_else(|_| unreachable!());
        let change = [Change::Update {
            path: vec![crate::diff::PathSegment::Key("counter".into())],
            value: json!(4),
        }];
        let replayed = ServerMessage::Mutation {
            store: "S",
            session: "id",
            diff: &change,
            message: None,
            request: request.as_ref(),
            epoch: Some("e"),
            version: Some(4),
            replayed: true,
        };
        assert_eq!(
            replayed.encode(),
            r#"{"type":"mutation","store":"S","session":"id","diff":[{"a":"u","p":["counter"],"t":4}],"request":"r1","epoch":"e","version":4,"replayed":true}"#
        );
        let stores = [
            ResumedStore {
                store: "S",
                joined: None,
                epoch: Some("e"),
                version: Some(4),
                diff: Some(&diff),
                data: None,
            },
            ResumedStore {
                store: "T",
                joined: Some(false),
                epoch: None,
                version: None,
                diff: None,
                data: None,
            },
        ];
        let resumed = ServerMessage::Resume {
            session: "id",
            resumed: true,
            error: None,
            token: Some("9.ab"),
            request: &request,
            stores: &stores,
        };
        assert_eq!(
            resumed.encode(),
            r#"{"type":"resume","session":"id","resumed":true,"token":"9.ab","request":"r1","stores":[{"store":"S","epoch":"e","version":4,"diff":[{"a":"u","p":["counter"],"t":4}]},{"store":"T","joined":false}]}"#
        );
        let refused = ServerMessage::Resume {
            session: "new",
            resumed: false,
            error: Some("No."),
            token: None,
            request: &request,
            stores: &[],
        };
        assert_eq!(
            refused.encode(),
            r#"{"type":"resume","session":"new","resumed":false,"error":"No.","request":"r1"}"#
        );
        let resume = r#"{"type":"resume","session":"id","token":"9.ab","stores":[{"store":"S","epoch":"e","version":4}],"request":"r2"}"#;
        assert_eq!(
            ClientMessage::decode(resume),
            Some(ClientMessage::Resume {
                session: "id".into(),
                token: "9.ab".into(),
                stores: vec![HeldStore {
                    store: "S".into(),
                    epoch: "e".into(),
                    version: 4
                }],
                request: Some(json!("r2")),
            })
        );
        for junk in [
            r#"{"type":"resume","token":"t"}"#,
            r#"{"type":"resume","session":"id"}"#,
            r#"{"type":"resume","session":"id","token":"t","stores":[{"store":"S","epoch":"e","version":-1}]}"#,
            r#"{"type":"resume","session":"id","token":"t","stores":{}}"#,
        ] {
            assert_eq!(ClientMessage::decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn close_reasons_fit_a_frame() {
        let close = Close::store_not_defined(&"é".repeat(100));
        assert!(close.reason.len() <= MAX_CLOSE_REASON);
        assert!(close.reason.starts_with("Store 'éé"));
        assert_eq!(
            Close::store_not_defined("X").reason,
            "Store 'X' is not defined or can't be compiled."
        );
        assert_eq!(
            Close::store_not_set(),
            Close::new(4000, "Store is not set.")
        );
    }

    mod frames {
        use super::*;
        use crate::diff::PathSegment;
        use proptest::prelude::*;

        /// JSON values, strings with quotes, escapes and non-ASCII among them.
        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(any::<String>(), inner, 0..4)
                        .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        fn changes() -> impl Strategy<Value = Vec<Change>> {
            let segment = prop_oneof![
                any::<String>().prop_map(PathSegment::Key),
                any::<usize>().prop_map(PathSegment::Index),
            ];
            let path = prop::collection::vec(segment, 0..3);
            let change = (0..3u8, path, json()).prop_map(|(kind, path, value)| match kind {
                0 => Change::Update { path, value },
                1 => Change::Insert { path, value },
                _ => Change::Delete { path },
            });
            prop::collection::vec(change, 0..4)
        }

        proptest! {
            /// The frame written field by field is the derived encoding, and it knows where its
            /// diff and its message are.
            #[test]
            fn a_mutation_frame_is_the_mutation_message(
                store in any::<String>(),
                session in any::<String>(),
                diff in changes(),
                message in proptest::option::of(json()),
                request in proptest::option::of(json()),
                epoch in proptest::option::of(any::<String>()),
                version in proptest::option::of(any::<u64>()),
                replayed in any::<bool>(),
            ) {
                let derived = ServerMessage::Mutation {
                    store: &store,
                    session: &session,
                    diff: &diff,
                    message: message.as_ref(),
                    request: request.as_ref(),
                    epoch: epoch.as_deref(),
                    version,
                    replayed,
                }
                .encode();
                let frame = MutationFrame {
                    store: &store,
                    session: &session,
                    diff: Json::Value(&diff),
                    message: message.as_ref().map(Json::Value),
                    request: request.as_ref(),
                    epoch: epoch.as_deref(),
                    version,
                    replayed,
                };
                let written = frame.encode();
                prop_assert_eq!(&written.text, &derived);
                let diff_text = serde_json::to_string(&diff).unwrap_or_default();
                prop_assert_eq!(written.diff(), diff_text.as_str());
                let message_text = message.as_ref().map(Value::to_string);
                prop_assert_eq!(written.message(), message_text.as_deref());
                // Written again from those texts, the frame is the same.
                let again = MutationFrame {
                    diff: Json::Text(written.diff()),
                    message: written.message().map(Json::Text),
                    ..frame
                }
                .encode();
                prop_assert_eq!(&again.text, &derived);
            }
        }
    }
}
