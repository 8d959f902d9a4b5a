//! What nodes say to each other over Redis: one JSON message per PUBLISH. Commands cross nodes,
//! never diffs: a mutation by name and whom it is for, a request for one session's reply, and
//! the answers to a request.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::MutationError;
use crate::local::HubError;
use crate::mutation::{RawMutation, Target};

/// A message as a node writes it (borrowing what it sends).
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Outbound<'a> {
    /// Run a mutation in the sessions `target` selects.
    Mutate {
        from: &'a str,
        target: WireTarget<'a>,
        mutation: WireMutation<'a>,
    },
    /// Run a mutation in session `session` and answer to node `from`.
    Request {
        from: &'a str,
        id: u64,
        session: &'a str,
        mutation: WireMutation<'a>,
    },
    /// Node `from` has the session of request `id` and runs the mutation.
    Taken { from: &'a str, id: u64 },
    /// Node `from` does not have the session of request `id`.
    Absent { from: &'a str, id: u64 },
    /// The result of request `id`.
    Reply {
        from: &'a str,
        id: u64,
        result: Result<Option<&'a Value>, WireError>,
    },
}

/// A message as a node reads it.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum Inbound {
    Mutate {
        from: String,
        target: OwnedTarget,
        mutation: OwnedMutation,
    },
    Request {
        from: String,
        id: u64,
        session: String,
        mutation: OwnedMutation,
    },
    Taken {
        from: String,
        id: u64,
    },
    Absent {
        from: String,
        id: u64,
    },
    Reply {
        from: String,
        id: u64,
        result: Result<Option<Value>, WireError>,
    },
}

impl Inbound {
    /// The node that sent it.
    pub(super) fn from(&self) -> &str {
        match self {
            Inbound::Mutate { from, .. }
            | Inbound::Request { from, .. }
            | Inbound::Taken { from, .. }
            | Inbound::Absent { from, .. }
            | Inbound::Reply { from, .. } => from,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum WireTarget<'a> {
    Store,
    Key(&'a str),
    Session(&'a str),
}

impl<'a> From<&'a Target> for WireTarget<'a> {
    fn from(target: &'a Target) -> Self {
        match target {
            Target::Store => WireTarget::Store,
            Target::Key(key) => WireTarget::Key(key),
            Target::Session(id) => WireTarget::Session(id),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum OwnedTarget {
    Store,
    Key(String),
    Session(String),
}

impl From<OwnedTarget> for Target {
    fn from(target: OwnedTarget) -> Self {
        match target {
            OwnedTarget::Store => Target::Store,
            OwnedTarget::Key(key) => Target::Key(key),
            OwnedTarget::Session(id) => Target::Session(id),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct WireMutation<'a> {
    store: &'a str,
    name: &'a str,
    args: &'a [Value],
}

impl<'a> From<&'a RawMutation> for WireMutation<'a> {
    fn from(mutation: &'a RawMutation) -> Self {
        WireMutation {
            store: mutation.store(),
            name: mutation.name(),
            args: mutation.args(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq)]
pub(super) struct OwnedMutation {
    store: String,
    name: String,
    args: Vec<Value>,
}

impl OwnedMutation {
    /// The mutation, checked against this node's stores: another node may run another version
    /// of the program (during a deploy).
    pub(super) fn check(self) -> Result<RawMutation, crate::mutation::NameError> {
        RawMutation::new(&self.store, &self.name, self.args)
    }
}

/// A [`HubError`] on its way back to the node that asked: the variants a session's answer can
/// be, the rest as text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum WireError {
    NoSession,
    NotJoined,
    Overloaded,
    Gone,
    Refused(String),
    Panicked { mutation: String },
    Unserializable { mutation: String, reason: String },
    TimedOut { mutation: String, limit_ms: u64 },
    Other(String),
}

impl WireError {
    pub(super) fn from_hub(error: &HubError) -> Self {
        match error {
            HubError::NoSession(_) => WireError::NoSession,
            HubError::NotJoined { .. } => WireError::NotJoined,
            HubError::Overloaded(_) => WireError::Overloaded,
            HubError::Gone(_) => WireError::Gone,
            HubError::Mutation(MutationError::Refused(message)) => {
                WireError::Refused(message.clone())
            }
            HubError::Mutation(MutationError::Panicked { mutation, .. }) => WireError::Panicked {
                mutation: mutation.clone(),
            },
            HubError::Mutation(MutationError::Unserializable {
                mutation, reason, ..
            }) => WireError::Unserializable {
                mutation: mutation.clone(),
                reason: reason.clone(),
            },
            HubError::Mutation(MutationError::TimedOut {
                mutation, limit, ..
            }) => WireError::TimedOut {
                mutation: mutation.clone(),
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            },
            other => WireError::Other(other.to_string()),
        }
    }

    /// The error as the asking node reports it: `session` and `store` are the request's.
    pub(super) fn into_hub(self, session: &str, store: &'static str) -> HubError {
        match self {
            WireError::NoSession => HubError::NoSession(session.into()),
            WireError::NotJoined => HubError::NotJoined {
                session: session.into(),
                store,
            },
            WireError::Overloaded => HubError::Overloaded(session.into()),
            WireError::Gone => HubError::Gone(session.into()),
            WireError::Refused(message) => MutationError::Refused(message).into(),
            WireError::Panicked { mutation } => MutationError::Panicked { store, mutation }.into(),
            WireError::Unserializable { mutation, reason } => MutationError::Unserializable {
                store,
                mutation,
                reason,
            }
            .into(),
            WireError::TimedOut { mutation, limit_ms } => MutationError::TimedOut {
                store,
                mutation,
                limit: Duration::from_millis(limit_ms),
            }
            .into(),
            WireError::Other(message) => {
                HubError::Backplane(format!("session {session:?} answered an error: {message}"))
            }
        }
    }
}

/// Writes `message` as the JSON text a PUBLISH carries.
pub(super) fn encode(message: &Outbound<'_>) -> String {
    // Every field is a string, a number or a JSON value: serializing cannot fail.
    serde_json::to_string(message).unwrap_or_default()
}

/// Reads a message; what is not one (another program on the channel, a newer format) is an error.
pub(super) fn decode(bytes: &[u8]) -> Result<Inbound, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn owned(store: &str, name: &str, args: Vec<Value>) -> OwnedMutation {
        OwnedMutation {
            store: store.into(),
            name: name.into(),
            args,
        }
    }

    #[test]
    fn a_mutation_reads_back_as_written() {
        let args = [json!(1), json!({"a": [true, null]})];
        let mutation = WireMutation {
            store: "S",
            name: "set",
            args: &args,
        };
        for (target, expected) in [
            (WireTarget::Store, OwnedTarget::Store),
            (WireTarget::Key("k:1"), OwnedTarget::Key("k:1".into())),
            (
                WireTarget::Session("abc"),
                OwnedTarget::Session("abc".into()),
            ),
        ] {
            let text = encode(&Outbound::Mutate {
                from: "node",
                target,
                mutation,
            });
            assert_eq!(
                decode(text.as_bytes()).ok(),
                Some(Inbound::Mutate {
                    from: "node".into(),
                    target: expected,
                    mutation: owned("S", "set", args.to_vec()),
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn a_request_and_its_answers_read_back_as_written() {
        let value = json!({"ok": 1});
        let cases = [
            (
                encode(&Outbound::Request {
                    from: "a",
                    id: 7,
                    session: "s",
                    mutation: WireMutation {
                        store: "S",
                        name: "n",
                        args: &[],
                    },
                }),
                Inbound::Request {
                    from: "a".into(),
                    id: 7,
                    session: "s".into(),
                    mutation: owned("S", "n", vec![]),
                },
            ),
            (
                encode(&Outbound::Taken { from: "b", id: 7 }),
                Inbound::Taken {
                    from: "b".into(),
                    id: 7,
                },
            ),
            (
                encode(&Outbound::Absent { from: "b", id: 7 }),
                Inbound::Absent {
                    from: "b".into(),
                    id: 7,
                },
            ),
            (
                encode(&Outbound::Reply {
                    from: "b",
                    id: 7,
                    result: Ok(Some(&value)),
                }),
                Inbound::Reply {
                    from: "b".into(),
                    id: 7,
                    result: Ok(Some(value.clone())),
                },
            ),
            (
                encode(&Outbound::Reply {
                    from: "b",
                    id: 7,
                    result: Err(WireError::Refused("no".into())),
                }),
                Inbound::Reply {
                    from: "b".into(),
                    id: 7,
                    result: Err(WireError::Refused("no".into())),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text.as_bytes()).ok(), Some(expected), "{text}");
        }
    }

    #[test]
    fn errors_cross_nodes_as_the_same_hub_errors() {
        let store = "Wire.Store";
        let errors = [
            HubError::NoSession("s".into()),
            HubError::NotJoined {
                session: "s".into(),
                store,
            },
            HubError::Overloaded("s".into()),
            HubError::Gone("s".into()),
            MutationError::Refused("too big".into()).into(),
            MutationError::Panicked {
                store,
                mutation: "m".into(),
            }
            .into(),
            MutationError::Unserializable {
                store,
                mutation: "m".into(),
                reason: "r".into(),
            }
            .into(),
            MutationError::TimedOut {
                store,
                mutation: "m".into(),
                limit: Duration::from_millis(1500),
            }
            .into(),
        ];
        for error in errors {
            let wire = WireError::from_hub(&error);
            let text = serde_json::to_string(&wire).unwrap_or_default();
            let back: WireError = serde_json::from_str(&text).unwrap_or(WireError::Other(text));
            assert_eq!(back.into_hub("s", store), error);
        }
        let other = WireError::from_hub(&HubError::Arguments("bad".into()));
        assert_eq!(
            other.into_hub("s", store).to_string(),
            "the backplane could not send the mutation: session \"s\" answered an error: bad"
        );
    }

    #[test]
    fn what_is_not_a_message_is_an_error() {
        for text in [
            "",
            "{}",
            "[1]",
            r#"{"mutate":{}}"#,
            r#"{"explode":{"from":"a"}}"#,
        ] {
            assert!(decode(text.as_bytes()).is_err(), "{text}");
        }
    }
}
