//! The connection driver: one task per connection runs a [`Connection`] over a [`Transport`] and
//! enforces every rule of a live connection, whatever the transport: frame size, idle limit,
//! send limit, inbox overload, a frame's panic (1011), the graceful stop (1001), and teardown.
//!
//! Work runs one item at a time (a frame or a server-side mutation), so answers keep their
//! order; while an item runs the driver goes on watching the client (a close, the idle limit,
//! frames queued up to [`PIPELINE`]) and the inbox (overload).
//!
//! When the client goes without closing (the network dropped, it went silent or fell behind),
//! a session that holds stores is detached instead of ended: the same task keeps applying
//! server-side mutations to it until a resume on another connection takes it over (the
//! connection and its inbox are handed to that connection's task), its time is up, it is
//! evicted or the process stops (PROTOCOL.md, "Detached sessions").

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::connection::{Connection, Reaction, ResumeRequest};
use crate::hub::Hub;
use crate::local::{ClaimError, Command, Handoff, Inbox, Signal};
use crate::protocol::{Close, CloseCode};
use crate::telemetry::Telemetry;
use crate::transport::{Incoming, Transport};

/// Frames read ahead while one item runs; past it the driver stops reading until the item ends.
pub(crate) const PIPELINE: usize = 32;

/// The limits the driver enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) idle: Duration,
    pub(crate) send: Duration,
    pub(crate) max_frame: usize,
    /// Whether sessions wait for their client to resume them.
    pub(crate) resumable: bool,
}

/// One item of work.
enum Work {
    Text(String),
    Command(Box<Command>),
}

/// How long a resume waits for a session still attached to a connection that may have dropped
/// without the server noticing yet.
const RESUME_GRACE: Duration = Duration::from_secs(2);

/// How long a connection asked for a sign of life (a resume wants its session) has to show one;
/// shorter than [`RESUME_GRACE`], so that the resume sees the outcome.
const PONG_WAIT: Duration = Duration::from_secs(1);

/// Why the connection ends.
struct End {
    /// The close frame to send, if any (none when the client closed or is gone).
    close: Option<Close>,
    /// Whether the client went without closing: its session waits for a resume.
    detach: bool,
    /// Whether the close frame was sent already (the server ended the connection).
    sent: bool,
    /// Whether it ends because server-side mutations did not fit the session's inbox.
    overloaded: bool,
}

impl End {
    /// Close with this code and reason; the session ends.
    fn close(close: Close) -> Self {
        Self {
            close: Some(close),
            detach: false,
            sent: false,
            overloaded: false,
        }
    }

    /// The client closed: nothing to send; the session ends.
    fn closed() -> Self {
        Self {
            close: None,
            detach: false,
            sent: false,
            overloaded: false,
        }
    }

    /// The client is gone without closing: nothing can be sent; the session waits.
    fn lost() -> Self {
        Self {
            close: None,
            detach: true,
            sent: false,
            overloaded: false,
        }
    }
}

/// A detached session on its way to the connection that resumes it.
struct Parked {
    connection: Connection,
    inbox: Inbox,
}

struct Watch {
    inbox: Inbox,
    hub: Hub,
    /// The session served, as the hub knows it (a resume changes it).
    session: String,
    idle: Pin<Box<Sleep>>,
    limits: Limits,
    queued: VecDeque<String>,
    /// Until when the client has to show a sign of life, when it was asked for one.
    pong: Option<Pin<Box<Sleep>>>,
    /// What the hub raised that waits for the item in progress to end (a stop).
    deferred: u8,
    telemetry: Telemetry,
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
        hub: connection.hub().clone(),
        session: connection.id().to_owned(),
        idle: Box::pin(tokio::time::sleep(limits.idle)),
        limits,
        queued: VecDeque::new(),
        pong: None,
        deferred: 0,
        telemetry: connection.settings().telemetry.clone(),
    };
    // Answers of a durable session wait here until what they carry is saved: while frames are
    // queued, the next ones run first, and one save carries them all.
    let mut held: Vec<String> = Vec::new();
    let end = loop {
        if !held.is_empty() && (watch.queued.is_empty() || held.len() >= PIPELINE) {
            if let Err(end) = watch
                .flush(&mut transport, &mut connection, &mut held)
                .await
            {
                break end;
            }
        }
        let work = match watch.next(&mut transport).await {
            Ok(work) => work,
            Err(end) => break end,
        };
        // Boxed: the state of a join or a mutation would otherwise be part of every idle
        // connection's task.
        let serving = &mut connection;
        let run: Pin<Box<dyn Future<Output = Reaction> + '_>> = match work {
            Work::Text(text) => Box::pin(async move { serving.on_text(&text).await }),
            Work::Command(command) => Box::pin(serving.on_command(command)),
        };
        let reaction = match watch.during(&mut transport, run).await {
            Ok(reaction) => reaction,
            Err(end) => break end,
        };
        match reaction {
            Reaction::Nothing => {}
            Reaction::Send(text) if connection.unsaved() || !held.is_empty() => held.push(text),
            Reaction::Send(text) => {
                if let Err(end) = watch.send(&mut transport, text).await {
                    break end;
                }
            }
            Reaction::Close(close) => {
                // What was answered before goes first (saved), then the close.
                if let Err(end) = watch
                    .flush(&mut transport, &mut connection, &mut held)
                    .await
                {
                    break end;
                }
                break End::close(close);
            }
            Reaction::Resume(request) => {
                // While it waits, the client is watched: a resume whose client went is dropped
                // (it must not take the session from a newer connection of that client).
                let claimed = claim(&mut watch, &mut transport, &connection, &request).await;
                let claimed = match claimed {
                    Ok(claimed) => claimed,
                    Err(end) => break end,
                };
                let answer = match claimed {
                    Ok(parked) => {
                        let fresh = std::mem::replace(&mut connection, parked.connection);
                        watch.inbox = parked.inbox;
                        watch.session = connection.id().to_owned();
                        watch.hub.attached(&watch.session);
                        // The connection's own session never held a store: it just goes.
                        fresh.close().await;
                        connection.resumed(&request)
                    }
                    Err(error) => {
                        tracing::info!(%error, "resume refused");
                        connection.resume_refused(&error, &request.request)
                    }
                };
                if let Err(end) = watch.send(&mut transport, answer).await {
                    break end;
                }
            }
        }
    };
    let detach = end.detach && limits.resumable && connection.holds_stores();
    if detach && connection.unsaved() {
        // Changes whose answers were held when the client went: saved before the session
        // waits, so that another node can take it over with them.
        connection.save().await;
    }
    if detach {
        // A resume meanwhile waits for the close below.
        watch.hub.leaving(&watch.session);
    }
    if let Some(close) = end.close {
        send_close(&mut transport, close, limits.send, &watch.telemetry).await;
    } else if !end.sent {
        watch.telemetry.disconnected(!end.detach);
    }
    // The socket goes now, whatever the session does next (a detached one may wait minutes).
    drop(transport);
    if detach {
        if end.overloaded {
            // Commands that did not fit while the connection closed are the overload it
            // closed for (counted once), not a new one that would end the waiting session.
            watch.inbox.signal.lower(Signal::OVERLOADED);
        }
        detached(connection, watch.inbox).await;
    } else {
        connection.close().await;
    }
    tracing::info!("disconnected");
}

async fn send_close(
    transport: &mut impl Transport,
    close: Close,
    limit: Duration,
    telemetry: &Telemetry,
) {
    tracing::info!(code = close.code, reason = %close.reason, "closing");
    telemetry.closed(close.code);
    let _ = tokio::time::timeout(limit, transport.close(close)).await;
}

/// Takes the session `request` names for `connection` to serve: waits (watching the client, so
/// a gone client's resume stops waiting) until it can be claimed, then takes it over.
async fn claim(
    watch: &mut Watch,
    transport: &mut impl Transport,
    connection: &Connection,
    request: &ResumeRequest,
) -> Result<Result<Parked, String>, End> {
    let session = &request.session;
    let ended = || format!("Session {session} cannot be resumed: it has ended.");
    let attached = || format!("Session {session} is attached to another connection.");
    if session == connection.id() {
        return Ok(Err(attached()));
    }
    // A session leaving its connection first finishes what it runs (within the time limit) and
    // sends its close (within the send timeout).
    let settings = connection.settings();
    let patience = settings.time_limit + settings.send + RESUME_GRACE;
    let waiting = connection.hub().claim(session, RESUME_GRACE, patience);
    let claim = match watch.beside(transport, waiting).await? {
        Ok(claim) => claim,
        Err(ClaimError::Ended) => return take_over(watch, transport, connection, request).await,
        Err(ClaimError::Attached) => return Ok(Err(attached())),
    };
    // Claimed: from here on the takeover is not given up when the client goes (the session
    // would be dropped in between); a gone client is noticed after it, and the session detaches
    // again.
    let (reply, handoff) = oneshot::channel();
    if claim.send(reply).is_err() {
        return Ok(Err(ended()));
    }
    // The task answers between two server-side mutations: within the time limit of one.
    let patience = settings.time_limit + RESUME_GRACE;
    Ok(match tokio::time::timeout(patience, handoff).await {
        Ok(Ok(handoff)) => handoff
            .downcast::<Parked>()
            .map(|parked| *parked)
            .map_err(|_other| ended()),
        Ok(Err(_)) | Err(_) => Err(ended()),
    })
}

/// The session is not in this process: a durable one is taken over from its saved record (the
/// node that had it died, stopped, or no longer serves it: its lease is raised, so it cannot
/// write any more).
async fn take_over(
    watch: &mut Watch,
    transport: &mut impl Transport,
    connection: &Connection,
    request: &ResumeRequest,
) -> Result<Result<Parked, String>, End> {
    let session = &request.session;
    let settings = connection.settings();
    let Some(store) = settings.durable.clone() else {
        return Ok(Err(format!(
            "Session {session} cannot be resumed: it has ended."
        )));
    };
    let ttl = settings.idle + settings.resume.ttl;
    let taken = match watch.beside(transport, store.take(session, ttl)).await? {
        Ok(Some(taken)) => taken,
        Ok(None) => {
            return Ok(Err(format!(
                "Session {session} cannot be resumed: it has ended."
            )))
        }
        Err(error) => {
            tracing::warn!(%error, "a durable session could not be read");
            return Ok(Err(format!(
                "Session {session} cannot be resumed now: its saved record could not be read ({error})."
            )));
        }
    };
    let own = connection.session().with_id(session);
    let restored = Connection::restore(connection.hub(), connection.settings_arc(), own, taken);
    Ok(match restored {
        Ok((connection, inbox)) => {
            tracing::info!(session = %session, "durable session taken over");
            Ok(Parked { connection, inbox })
        }
        Err(error) => {
            tracing::warn!(session = %session, %error, "a durable session could not be made again");
            Err(format!(
                "Session {session} cannot be resumed here: {error}."
            ))
        }
    })
}

/// Keeps a session whose client went without closing until a resume takes it over (its task
/// hands it to the resuming connection's), its time is up, it is evicted to stay within the
/// limits, it falls behind, or the process stops; then it ends.
async fn detached(mut connection: Connection, mut inbox: Inbox) {
    let ttl = connection.settings().resume.ttl;
    let Some(mut claims) = connection.detach() else {
        connection.close().await;
        return;
    };
    tracing::info!(session = %connection.id(), ?ttl, "detached: the session waits for a resume");
    let expiry = tokio::time::sleep(ttl);
    let mut expiry = pin!(expiry);
    let mut evicted = false;
    loop {
        tokio::select! {
            claim = &mut claims => {
                let Ok(reply) = claim else {
                    evicted = true;
                    break;
                };
                let handoff: Handoff = Box::new(Parked { connection, inbox });
                let Err(handoff) = reply.send(handoff) else {
                    return; // the resuming connection serves it now
                };
                // The resuming connection went before taking it: the session waits again.
                let Ok(parked) = handoff.downcast::<Parked>() else {
                    return; // only a `Parked` is ever sent
                };
                (connection, inbox) = (parked.connection, parked.inbox);
                match connection.detach() {
                    Some(again) => claims = again,
                    None => break,
                }
            }
            command = inbox.commands.recv() => {
                let Some(command) = command else { break };
                let held = connection.history_bytes();
                let ran = AssertUnwindSafe(connection.on_command(command)).catch_unwind().await;
                if ran.is_err() {
                    tracing::error!("a server-side mutation panicked in a detached session");
                    break;
                }
                if connection.moved() {
                    break; // another node holds the session now
                }
                if connection.history_bytes() != held {
                    connection.detached_size();
                }
            }
            () = &mut expiry => break,
            reasons = inbox.signal.next() => {
                // A stop, or commands that did not fit: it ends. (A probe asks nothing of a
                // detached session: a resume takes it.)
                if reasons & Signal::OVERLOADED != 0 {
                    connection.settings().telemetry.overflowed();
                }
                if reasons & (Signal::STOP | Signal::OVERLOADED) != 0 {
                    break;
                }
            }
        }
    }
    connection.end_detached();
    if evicted {
        // Evicted to keep this process within its limits: a durable session still waits in
        // its store, for a resume on any node.
        tracing::info!(session = %connection.id(), "a detached session is evicted");
        connection.let_go().await;
        return;
    }
    tracing::info!(session = %connection.id(), "a detached session ends");
    connection.close().await;
}

impl Watch {
    fn touched(&mut self) {
        self.idle.as_mut().reset(Instant::now() + self.limits.idle);
        self.pong = None;
    }

    /// Acts on what the hub raised: overload ends the connection, a stop too (once the item in
    /// progress is done: `in_item` keeps it for later), a probe asks the client for a sign of
    /// life.
    async fn on_signal(
        &mut self,
        transport: &mut impl Transport,
        reasons: u8,
        in_item: bool,
    ) -> Result<(), End> {
        let reasons = reasons | std::mem::take(&mut self.deferred);
        if reasons & Signal::OVERLOADED != 0 {
            self.telemetry.overflowed();
            return Err(overloaded());
        }
        if reasons & Signal::STOP != 0 {
            if !in_item {
                return Err(going_away());
            }
            self.deferred |= Signal::STOP;
        }
        if reasons & Signal::PROBE != 0 {
            self.probe(transport).await?;
        }
        Ok(())
    }

    /// A resume wants this session: the client is asked for a sign of life (any frame within
    /// [`PONG_WAIT`]); a connection that cannot even take the ping is lost.
    async fn probe(&mut self, transport: &mut impl Transport) -> Result<(), End> {
        // Bounded by the wait for the sign of life itself: a connection whose outgoing frames
        // are stuck cannot show one in time either, and the resume waits only so long.
        match tokio::time::timeout(PONG_WAIT, transport.ping()).await {
            Ok(Ok(true)) => {
                if self.pong.is_none() {
                    self.pong = Some(Box::pin(tokio::time::sleep(PONG_WAIT)));
                }
                Ok(())
            }
            Ok(Ok(false)) => Ok(()),
            Ok(Err(_)) | Err(_) => {
                tracing::info!("a resume wants the session and its connection is gone");
                Err(End::lost())
            }
        }
    }

    /// What a frame from the client means: a text to answer, nothing, or the end.
    fn read(&mut self, incoming: Incoming) -> Result<Option<String>, End> {
        self.touched();
        match incoming {
            Incoming::Text(text) if text.len() > self.limits.max_frame => {
                Err(End::close(Close::too_big()))
            }
            Incoming::Text(text) => Ok(Some(text)),
            Incoming::Activity => Ok(None),
            Incoming::Binary => Err(End::close(Close::malformed())),
            Incoming::Violation(close) => Err(End::close(close)),
            Incoming::Closed => {
                tracing::info!("client closed");
                Err(End::closed())
            }
            Incoming::Lost => {
                tracing::info!("connection lost");
                Err(End::lost())
            }
        }
    }

    /// The next item of work: a frame read ahead, a new frame, or a server-side mutation.
    async fn next(&mut self, transport: &mut impl Transport) -> Result<Work, End> {
        if let Some(text) = self.queued.pop_front() {
            return Ok(Work::Text(text));
        }
        if self.deferred != 0 {
            self.on_signal(transport, 0, false).await?;
        }
        loop {
            tokio::select! {
                incoming = transport.recv() => {
                    if let Some(text) = self.read(incoming)? {
                        return Ok(Work::Text(text));
                    }
                }
                command = self.inbox.commands.recv() => {
                    return command.map(Work::Command).ok_or_else(End::closed);
                }
                () = self.idle.as_mut() => return Err(idle()),
                reasons = self.inbox.signal.next() => self.on_signal(transport, reasons, false).await?,
                () = no_pong(&mut self.pong), if self.pong.is_some() => {
                    if let Some(text) = self.last_look(transport)? {
                        return Ok(Work::Text(text));
                    }
                }
            }
        }
    }

    /// The time for a sign of life is up: what the client sent meanwhile counts (a busy task may
    /// see the deadline and the frame at once); nothing at all, and the connection is lost.
    fn last_look(&mut self, transport: &mut impl Transport) -> Result<Option<String>, End> {
        match transport.recv().now_or_never() {
            Some(incoming) => self.read(incoming),
            None => Err(silent()),
        }
    }

    /// Awaits `work` (not an item of the session: the claim of another) while watching the
    /// client: frames are read ahead, and the client's going ends the connection at once
    /// (`work` is dropped).
    async fn beside<T>(
        &mut self,
        transport: &mut impl Transport,
        work: impl Future<Output = T>,
    ) -> Result<T, End> {
        let mut work = pin!(work);
        loop {
            let reading = self.queued.len() < PIPELINE;
            tokio::select! {
                biased;
                done = &mut work => return Ok(done),
                incoming = transport.recv(), if reading => {
                    if let Some(text) = self.read(incoming)? {
                        self.queued.push_back(text);
                    }
                }
                () = self.idle.as_mut() => return Err(idle()),
            }
        }
    }

    /// Runs one item while watching the client and the inbox. A panic in it closes this
    /// connection with 1011; the other connections go on. When the client goes without closing
    /// meanwhile, the item still runs to its end (its answer is remembered for a resume) and
    /// the connection ends after it; when it closes, the item is cut short and rolled back.
    async fn during(
        &mut self,
        transport: &mut impl Transport,
        run: impl Future<Output = Reaction>,
    ) -> Result<Reaction, End> {
        let mut run = pin!(AssertUnwindSafe(run).catch_unwind());
        let mut gone: Option<End> = None;
        loop {
            let watching = gone.is_none();
            let reading = watching && self.queued.len() < PIPELINE;
            let mut end = tokio::select! {
                biased;
                result = &mut run => {
                    let reaction = result.map_err(|_panic| {
                        tracing::error!("answering a frame panicked; closing this connection");
                        End::close(Close::new(CloseCode::INTERNAL, "Internal error."))
                    })?;
                    return gone.map_or(Ok(reaction), Err);
                }
                incoming = transport.recv(), if reading => match self.read(incoming) {
                    Ok(Some(text)) => {
                        self.queued.push_back(text);
                        continue;
                    }
                    Ok(None) => continue,
                    Err(end) => end,
                },
                () = self.idle.as_mut(), if watching => idle(),
                reasons = self.inbox.signal.next(), if watching => {
                    match self.on_signal(transport, reasons, true).await {
                        Ok(()) => continue,
                        Err(end) => end,
                    }
                }
                () = no_pong(&mut self.pong), if watching && self.pong.is_some() => {
                    match self.last_look(transport) {
                        Ok(Some(text)) => {
                            self.queued.push_back(text);
                            continue;
                        }
                        Ok(None) => continue,
                        Err(end) => end,
                    }
                }
            };
            if !(end.detach && self.limits.resumable) {
                return Err(end);
            }
            // The session will wait for its client: the item it sent runs to its end, but the
            // close cannot wait for it. A resume meanwhile waits for the item.
            self.hub.leaving(&self.session);
            if let Some(close) = end.close.take() {
                send_close(transport, close, self.limits.send, &self.telemetry).await;
                end.sent = true;
            }
            gone = Some(end);
        }
    }

    /// Saves a durable session's changes (watching the client meanwhile), then sends the
    /// answers that carried them, in order. A session another node holds now is closed.
    async fn flush(
        &mut self,
        transport: &mut impl Transport,
        connection: &mut Connection,
        held: &mut Vec<String>,
    ) -> Result<(), End> {
        if connection.unsaved() {
            let saving = async {
                if connection.save().await {
                    Reaction::Nothing
                } else {
                    Reaction::Close(crate::connection::moved_away())
                }
            };
            if let Reaction::Close(close) = self.during(transport, saving).await? {
                held.clear();
                return Err(End::close(close));
            }
        }
        for text in held.drain(..) {
            self.send(transport, text).await?;
        }
        Ok(())
    }

    async fn send(&mut self, transport: &mut impl Transport, text: String) -> Result<(), End> {
        match tokio::time::timeout(self.limits.send, transport.send(text)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_disconnected)) => Err(End::lost()),
            Err(_elapsed) => {
                tracing::warn!("dropping a connection whose client does not read");
                Err(End::lost())
            }
        }
    }
}

/// The client does not keep up: the connection closes; the session waits for a resume.
fn overloaded() -> End {
    tracing::warn!("closing a session that does not keep up with its pushes");
    End {
        close: Some(Close::new(
            CloseCode::POLICY,
            "Too many pending messages: the client does not read.",
        )),
        detach: true,
        sent: false,
        overloaded: true,
    }
}

/// The client went silent: the connection closes; the session waits for a resume.
fn idle() -> End {
    tracing::info!("closing an idle connection");
    End {
        close: Some(Close::new(CloseCode::NORMAL, "Idle timeout.")),
        detach: true,
        sent: false,
        overloaded: false,
    }
}

/// Waits for the deadline of a sign of life, if there is one.
async fn no_pong(pong: &mut Option<Pin<Box<Sleep>>>) {
    match pong {
        Some(deadline) => deadline.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Asked for a sign of life, the client gave none: the connection is taken as lost (a resume
/// wants the session).
fn silent() -> End {
    tracing::info!("no sign of life from a connection whose session a resume wants");
    End::lost()
}

fn going_away() -> End {
    End::close(Close::new(CloseCode::GOING_AWAY, "The server is stopping."))
}
