//! The connection driver: one task per connection runs a [`Connection`] over a [`Transport`] and
//! enforces every rule of a live connection, whatever the transport: frame size, idle limit,
//! send limit, inbox overload, a frame's panic (1011), the graceful stop (1001), and teardown.
//!
//! Work runs one item at a time (a frame or a server-side mutation), so answers keep their
//! order; while an item runs the driver goes on watching the client (a close, the idle limit,
//! frames queued up to [`PIPELINE`]) and the inbox (overload).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::time::{Instant, Sleep};

use crate::connection::{Connection, Reaction};
use crate::local::{Command, Inbox};
use crate::protocol::{Close, CloseCode};
use crate::transport::{Incoming, Transport};

/// Frames read ahead while one item runs; past it the driver stops reading until the item ends.
pub(crate) const PIPELINE: usize = 32;

/// The limits the driver enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) idle: Duration,
    pub(crate) send: Duration,
    pub(crate) max_frame: usize,
}

/// One item of work.
enum Work {
    Text(String),
    Command(Box<Command>),
}

/// Why the connection ends.
enum End {
    /// Close it with this code and reason.
    Close(Close),
    /// The client closed or is gone: nothing to send.
    Quiet,
}

struct Watch {
    inbox: Inbox,
    idle: Pin<Box<Sleep>>,
    limits: Limits,
    queued: VecDeque<String>,
}

/// Serves `connection` over `transport` until it ends, then runs every `terminate` and forgets
/// the session.
pub(crate) async fn drive(
    mut connection: Connection,
    inbox: Inbox,
    mut transport: impl Transport,
    limits: Limits,
) {
    let mut watch = Watch {
        inbox,
        idle: Box::pin(tokio::time::sleep(limits.idle)),
        limits,
        queued: VecDeque::new(),
    };
    let end = loop {
        let work = match watch.next(&mut transport).await {
            Ok(work) => work,
            Err(end) => break end,
        };
        // Boxed: the state of a join or a mutation would otherwise be part of every idle
        // connection's task.
        let connection = &mut connection;
        let run: Pin<Box<dyn Future<Output = Reaction> + '_>> = match work {
            Work::Text(text) => Box::pin(async move { connection.on_text(&text).await }),
            Work::Command(command) => Box::pin(connection.on_command(command)),
        };
        let reaction = match watch.during(&mut transport, run).await {
            Ok(reaction) => reaction,
            Err(end) => break end,
        };
        match reaction {
            Reaction::Nothing => {}
            Reaction::Send(text) => {
                if let Err(end) = watch.send(&mut transport, text).await {
                    break end;
                }
            }
            Reaction::Close(close) => break End::Close(close),
        }
    };
    if let End::Close(close) = end {
        tracing::info!(code = close.code, reason = %close.reason, "closing");
        let _ = tokio::time::timeout(limits.send, transport.close(close)).await;
    }
    connection.close().await;
    tracing::info!("disconnected");
}

impl Watch {
    fn touched(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.limits.idle);
    }

    /// What a frame from the client means: a text to answer, nothing, or the end.
    fn read(&mut self, incoming: Incoming) -> Result<Option<String>, End> {
        self.touched();
        match incoming {
            Incoming::Text(text) if text.len() > self.limits.max_frame => {
                Err(End::Close(Close::too_big()))
            }
            Incoming::Text(text) => Ok(Some(text)),
            Incoming::Activity => Ok(None),
            Incoming::Binary => Err(End::Close(Close::malformed())),
            Incoming::Violation(close) => Err(End::Close(close)),
            Incoming::Closed => {
                tracing::info!("client closed");
                Err(End::Quiet)
            }
        }
    }

    /// The next item of work: a frame read ahead, a new frame, or a server-side mutation.
    async fn next(&mut self, transport: &mut impl Transport) -> Result<Work, End> {
        if let Some(text) = self.queued.pop_front() {
            return Ok(Work::Text(text));
        }
        loop {
            tokio::select! {
                incoming = transport.recv() => {
                    if let Some(text) = self.read(incoming)? {
                        return Ok(Work::Text(text));
                    }
                }
                command = self.inbox.commands.recv() => {
                    return command.map(Work::Command).ok_or(End::Quiet);
                }
                () = self.inbox.overloaded.notified() => return Err(overloaded()),
                () = self.idle.as_mut() => return Err(idle()),
                () = self.inbox.stop.notified() => return Err(going_away()),
            }
        }
    }

    /// Runs one item while watching the client and the inbox. A panic in it closes this
    /// connection with 1011; the other connections go on.
    async fn during(
        &mut self,
        transport: &mut impl Transport,
        run: impl Future<Output = Reaction>,
    ) -> Result<Reaction, End> {
        let mut run = pin!(AssertUnwindSafe(run).catch_unwind());
        loop {
            let reading = self.queued.len() < PIPELINE;
            tokio::select! {
                biased;
                result = &mut run => {
                    return result.map_err(|_panic| {
                        tracing::error!("answering a frame panicked; closing this connection");
                        End::Close(Close::new(CloseCode::INTERNAL, "Internal error."))
                    });
                }
                incoming = transport.recv(), if reading => {
                    if let Some(text) = self.read(incoming)? {
                        self.queued.push_back(text);
                    }
                }
                () = self.inbox.overloaded.notified() => return Err(overloaded()),
                () = self.idle.as_mut() => return Err(idle()),
            }
        }
    }

    async fn send(&mut self, transport: &mut impl Transport, text: String) -> Result<(), End> {
        match tokio::time::timeout(self.limits.send, transport.send(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_disconnected)) => Err(End::Quiet),
            Err(_elapsed) => {
                tracing::warn!("dropping a connection whose client does not read");
                Err(End::Quiet)
            }
        }
    }
}

fn overloaded() -> End {
    tracing::warn!("closing a session that does not keep up with its pushes");
    End::Close(Close::new(
        CloseCode::POLICY,
        "Too many pending messages: the client does not read.",
    ))
}

fn idle() -> End {
    tracing::info!("closing an idle connection");
    End::Close(Close::new(CloseCode::NORMAL, "Idle timeout."))
}

fn going_away() -> End {
    End::Close(Close::new(CloseCode::GOING_AWAY, "The server is stopping."))
}
