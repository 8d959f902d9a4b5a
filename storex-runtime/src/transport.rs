//! For transport authors: how a connection's frames reach the core, and what the core needs
//! from a transport.
//!
//! A transport moves frames; it decides nothing. Admission (the `Origin` policy, the connect
//! hook, the session id), the HTTP join and every rule of a live connection (frame size, idle
//! limit, send limit, inbox overload, time limits, close codes, teardown) live in the core, in
//! [`Endpoint`](crate::Endpoint) and in the driver behind [`Accepted::serve`](crate::Accepted::serve).
//! A transport implements [`Transport`]: receive the next frame, send a text frame, close with a
//! code and a reason.
//!
//! The shape of an adapter (the `actix` module is one):
//! 1. build a [`ConnectRequest`](crate::ConnectRequest) from the request;
//! 2. [`Endpoint::admit`](crate::Endpoint::admit) it (a refusal is an HTTP status and a message);
//! 3. for a live connection, [`Endpoint::accept`](crate::Endpoint::accept) (which applies the
//!    connection caps and allocates the session), upgrade, then run
//!    [`Accepted::serve`](crate::Accepted::serve) with the transport on a task;
//! 4. for a plain request, [`Endpoint::http_join`](crate::Endpoint::http_join).

use std::future::Future;

pub use crate::protocol::{Close, CloseCode};

/// One live connection as the core drives it. Its futures need not be `Send`: the driver runs
/// on the task the transport spawns it on (actix's is thread-local).
pub trait Transport {
    /// The next thing the client sent. It must be cancel-safe: the driver stops waiting for it
    /// when something else happens first (a server-side mutation, a timer), and calls it again
    /// later; nothing received may be lost in between.
    fn recv(&mut self) -> impl Future<Output = Incoming>;

    /// Sends one text frame. The driver bounds it with the endpoint's send timeout.
    fn send(&mut self, text: String) -> impl Future<Output = Result<(), Disconnected>>;

    /// Closes the connection with `close`'s code and reason (then it is not used again).
    fn close(&mut self, close: Close) -> impl Future<Output = ()>;

    /// Asks the client for a sign of life that costs it nothing (a WebSocket ping, whose pong
    /// arrives as [`Incoming::Activity`]); `Ok(true)` when one was sent. The core asks when a
    /// client resumes a session this connection still serves: a connection that does not answer
    /// within a moment is taken as lost. The default sends nothing (`Ok(false)`): such a
    /// transport's session is only let go when the transport reports it lost.
    fn ping(&mut self) -> impl Future<Output = Result<bool, Disconnected>> {
        async { Ok(false) }
    }
}

/// What arrived from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Incoming {
    /// A text frame: one protocol message.
    Text(String),
    /// A binary frame (not part of the protocol: the core closes with 1007).
    Binary,
    /// Something that only shows the client is there (a WebSocket ping, which the transport
    /// answers itself, or a pong): it resets the idle limit.
    Activity,
    /// The client broke the transport's rules; the core closes with this code and reason (a
    /// frame too large: 1009, a text message that is not UTF-8: 1007, a WebSocket protocol
    /// error: 1002).
    Violation(Close),
    /// The client closed (it sent a close frame): the core closes nothing, and the session
    /// ends.
    Closed,
    /// The connection ended without a close from the client (the network dropped, the stream
    /// ended or failed): the core closes nothing, and the session waits for its client to
    /// resume it (PROTOCOL.md, "Detached sessions").
    Lost,
}

/// The connection is gone: nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Disconnected;
