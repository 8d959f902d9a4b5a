//! The event-stream transport, for clients that cannot open a WebSocket: a Server-Sent Events
//! stream carries the server's frames and `POST` requests carry the client's (PROTOCOL.md, "The
//! event-stream transport"). Framework-neutral: the `actix` module serves it, and an adapter for
//! another framework does the same in three handlers:
//!
//! 1. `GET <path>/sse`: [`Endpoint::admit`](crate::Endpoint::admit) and
//!    [`Endpoint::accept`](crate::Endpoint::accept) as for a WebSocket, then
//!    [`Accepted::serve_events`](crate::Accepted::serve_events): its [`EventStream`] is the body
//!    of the `200` answer ([`CONTENT_TYPE`], [`HEADERS`]), its future runs on a task;
//! 2. `POST <path>/sse/ID`: [`Endpoint::post`](crate::Endpoint::post), each chunk of the body to
//!    [`Post::push`], then [`Post::finish`]; `204`, or the [`PostError`]'s status;
//! 3. `DELETE <path>/sse/ID`: [`Endpoint::close_stream`](crate::Endpoint::close_stream).
//!
//! The session core is the WebSocket's: the same driver, limits, caps and hooks. Only the
//! framing differs, and the stream's id (secret, random) stands for the connection in its
//! requests.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, Mutex as OrderLock, OwnedMutexGuard};
use tokio::time::{Duration, Instant, Interval, MissedTickBehavior};

use crate::protocol::Close;
use crate::transport::{Disconnected, Incoming, Transport};

/// The `Content-Type` of an event stream.
pub const CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// The headers an event stream's answer carries besides its type: no cache, no buffering by a
/// proxy (nginx reads `X-Accel-Buffering`), and no compression (a compressing middleware would
/// hold events back until its buffer fills).
pub const HEADERS: [(&str, &str); 3] = [
    ("cache-control", "no-store"),
    ("x-accel-buffering", "no"),
    ("content-encoding", "identity"),
];

/// An SSE comment: clients skip it; writing it finds a client that is gone.
const HEARTBEAT: &str = ":\n\n";

/// Events waiting for the client to read them: past this the driver's send waits, bounded by
/// the endpoint's send timeout, as a WebSocket's does.
const OUTGOING: usize = 64;
/// Frames posted and not yet read by the driver: past this a `POST` waits.
const INCOMING: usize = 32;

/// The open event streams of every endpoint of a config and its clones (a `POST` may reach
/// another worker than its stream).
#[derive(Debug, Default)]
pub(crate) struct Streams {
    open: Mutex<HashMap<Arc<str>, Arc<Stream>>>,
}

/// One stream as its requests reach it.
#[derive(Debug)]
struct Stream {
    frames: mpsc::Sender<Incoming>,
    /// Held by a `POST` while it hands over its frames, so two requests never interleave.
    order: Arc<OrderLock<()>>,
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Stream>>> {
        // The map is left consistent by every operation: a panic elsewhere does not spoil it.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.lock().get(id).cloned()
    }

    /// Opens an event stream for a connection under `id` (random: it is the credential of the
    /// stream's requests): the body and the transport that feeds it. A comment goes out every
    /// `heartbeat` while the stream is quiet: a client that went away is only noticed when a
    /// write to it fails.
    pub(crate) fn open(
        self: &Arc<Self>,
        id: Arc<str>,
        heartbeat: Duration,
    ) -> (EventStream, impl Transport) {
        let (frames, inbox) = mpsc::channel(INCOMING);
        let (events, outgoing) = mpsc::channel(OUTGOING);
        let stream = Arc::new(Stream {
            frames,
            order: Arc::new(OrderLock::new(())),
        });
        self.lock().insert(id.clone(), stream);
        let opened = format!(
            "event: open\ndata: {}\n\n",
            serde_json::json!({ "stream": &*id })
        );
        // The channel is new and empty: the first event always fits.
        let _ = events.try_send(opened);
        (
            EventStream { events: outgoing },
            Events {
                id,
                inbox,
                events: Some(events),
                streams: self.clone(),
                heartbeat: heartbeat_every(heartbeat),
            },
        )
    }

    /// The stream `id`'s requests, or `None` when no open stream has that id.
    pub(crate) fn post(&self, id: &str, max_frame: usize) -> Option<Post> {
        let stream = self.get(id)?;
        Some(Post {
            stream,
            line: Vec::new(),
            max_frame,
            handed: false,
            order: None,
        })
    }

    /// The client's close: `false` when no open stream has that id.
    pub(crate) async fn close(&self, id: &str) -> bool {
        let Some(stream) = self.get(id) else {
            return false;
        };
        let _order = stream.order.clone().lock_owned().await;
        stream.frames.send(Incoming::Closed).await.is_ok()
    }

    /// How many streams are open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The body of an event stream's answer: the text of one event per item, the `open` event first
/// (it names the stream for the client's requests). It ends after the server's `close` event,
/// or when the connection ends; dropping it (the client went) ends the connection, which the
/// session takes as lost.
#[derive(Debug)]
pub struct EventStream {
    events: mpsc::Receiver<String>,
}

impl futures_util::Stream for EventStream {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        self.events.poll_recv(cx)
    }
}

/// An event stream as a [`Transport`]: frames from the client's requests, events to the body.
#[derive(Debug)]
struct Events {
    id: Arc<str>,
    inbox: mpsc::Receiver<Incoming>,
    /// `None` once closed: the body ends when it has sent what is queued.
    events: Option<mpsc::Sender<String>>,
    streams: Arc<Streams>,
    heartbeat: Interval,
}

fn heartbeat_every(period: Duration) -> Interval {
    let period = period.max(Duration::from_millis(1));
    let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    heartbeat
}

impl Drop for Events {
    fn drop(&mut self) {
        self.streams.lock().remove(&self.id);
    }
}

impl Events {
    async fn event(&mut self, event: String) -> Result<(), Disconnected> {
        match &self.events {
            Some(events) => events.send(event).await.map_err(|_gone| Disconnected),
            None => Err(Disconnected),
        }
    }
}

impl Transport for Events {
    async fn recv(&mut self) -> Incoming {
        let Self {
            inbox,
            events,
            heartbeat,
            ..
        } = self;
        let Some(events) = events.as_ref() else {
            return Incoming::Lost;
        };
        loop {
            // What the client posted before it went still counts.
            tokio::select! {
                biased;
                incoming = inbox.recv() => return incoming.unwrap_or(Incoming::Lost),
                () = events.closed() => return Incoming::Lost,
                _ = heartbeat.tick() => {
                    // A full queue writes anyway; the comment is not needed then.
                    let _ = events.try_send(HEARTBEAT.to_owned());
                }
            }
        }
    }

    async fn send(&mut self, text: String) -> Result<(), Disconnected> {
        self.event(message_event(&text)).await
    }

    async fn close(&mut self, close: Close) {
        let data = serde_json::json!({ "code": close.code, "reason": close.reason });
        let _ = self.event(format!("event: close\ndata: {data}\n\n")).await;
        self.events = None;
    }

    async fn ping(&mut self) -> Result<bool, Disconnected> {
        // The client answers with an empty `POST`, which arrives as `Incoming::Activity`.
        self.event("event: ping\ndata:\n\n".to_owned())
            .await
            .map(|()| true)
    }
}

/// A frame as an SSE `message` event: a `data:` line per line of the text. The server's JSON
/// has no line break; were there one, a client would read it back as `\n`.
fn message_event(text: &str) -> String {
    let mut event = String::with_capacity(text.len() + 8);
    for line in text.split(['\n', '\r']) {
        event.push_str("data: ");
        event.push_str(line);
        event.push('\n');
    }
    event.push('\n');
    event
}

/// Why a `POST` to a stream failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The stream ended while the request was handed over (its frames may have been read in
    /// part): the client takes the connection as lost.
    #[error("This stream has ended; open a new one.")]
    Ended,
    /// A frame is larger than the endpoint's maximum: the connection closes with 1009.
    #[error("A frame is larger than this endpoint's maximum frame size.")]
    TooBig,
    /// A frame is not UTF-8: the connection closes with 1007.
    #[error("A frame is not UTF-8 text.")]
    Malformed,
}

impl PostError {
    /// The HTTP status that answers it: 404, 413 or 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::Ended => 404,
            Self::TooBig => 413,
            Self::Malformed => 400,
        }
    }
}

/// One `POST` to an event stream: feed it the body's chunks with [`push`](Self::push) as they
/// arrive, then [`finish`](Self::finish). Each line is one frame, handed to the session in
/// order; a request whose frames wait for the session waits too (the session reads at most a
/// few dozen frames ahead).
#[derive(Debug)]
pub struct Post {
    stream: Arc<Stream>,
    /// The line read so far (at most the maximum frame size).
    line: Vec<u8>,
    max_frame: usize,
    /// Whether a frame was handed over: a request without one is a sign of life.
    handed: bool,
    order: Option<OwnedMutexGuard<()>>,
}

impl Post {
    /// Takes the next chunk of the body, handing every whole line to the session.
    pub async fn push(&mut self, mut chunk: &[u8]) -> Result<(), PostError> {
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n') {
            self.take(&chunk[..end]).await?;
            let line = std::mem::take(&mut self.line);
            self.hand(line).await?;
            chunk = &chunk[end + 1..];
        }
        self.take(chunk).await
    }

    /// Ends the request: its last line (without a line break) is a frame too; a request that
    /// held no frame tells the session its client is there.
    pub async fn finish(mut self) -> Result<(), PostError> {
        let line = std::mem::take(&mut self.line);
        self.hand(line).await?;
        if !self.handed {
            self.deliver(Incoming::Activity).await?;
        }
        Ok(())
    }

    async fn take(&mut self, part: &[u8]) -> Result<(), PostError> {
        if self.line.len() + part.len() > self.max_frame {
            self.line = Vec::new();
            // The session closes with 1009, as for a WebSocket frame too large.
            self.deliver(Incoming::Violation(Close::too_big())).await?;
            return Err(PostError::TooBig);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    async fn hand(&mut self, mut line: Vec<u8>) -> Result<(), PostError> {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            return Ok(());
        }
        let text = match String::from_utf8(line) {
            Ok(text) => text,
            Err(_) => {
                self.deliver(Incoming::Violation(Close::malformed()))
                    .await?;
                return Err(PostError::Malformed);
            }
        };
        self.handed = true;
        self.deliver(Incoming::Text(text)).await
    }

    async fn deliver(&mut self, incoming: Incoming) -> Result<(), PostError> {
        if self.order.is_none() {
            self.order = Some(self.stream.order.clone().lock_owned().await);
        }
        self.stream
            .frames
            .send(incoming)
            .await
            .map_err(|_ended| PostError::Ended)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures_util::StreamExt;

    use super::*;

    fn frames(transport: &mut impl Transport) -> Vec<Incoming> {
        let mut seen = Vec::new();
        while let Some(incoming) = futures_util::FutureExt::now_or_never(transport.recv()) {
            if incoming == Incoming::Lost {
                break;
            }
            seen.push(incoming);
        }
        seen
    }

    const ID: &str = "V1StGXR8_Z5jdHi6B-myT";

    fn open(streams: &Arc<Streams>) -> (EventStream, impl Transport) {
        streams.open(ID.into(), Duration::from_secs(3600))
    }

    fn text(text: &str) -> Incoming {
        Incoming::Text(text.to_owned())
    }

    #[tokio::test]
    async fn the_stream_opens_with_its_id_and_carries_frames_and_the_close() {
        let streams = Arc::new(Streams::default());
        let (mut body, mut transport) = open(&streams);
        let opened = body.next().await.unwrap();
        let id = opened
            .strip_prefix("event: open\ndata: {\"stream\":\"")
            .and_then(|rest| rest.strip_suffix("\"}\n\n"))
            .unwrap();
        assert_eq!(id, ID);
        assert!(streams.get(id).is_some());
        transport.send("{\"a\":1}".into()).await.unwrap();
        assert_eq!(body.next().await.unwrap(), "data: {\"a\":1}\n\n");
        transport.send("x\ny".into()).await.unwrap();
        assert_eq!(body.next().await.unwrap(), "data: x\ndata: y\n\n");
        assert!(transport.ping().await.unwrap());
        assert_eq!(body.next().await.unwrap(), "event: ping\ndata:\n\n");
        transport.close(Close::too_big()).await;
        assert_eq!(
            body.next().await.unwrap(),
            "event: close\ndata: {\"code\":1009,\"reason\":\"Frame too large.\"}\n\n"
        );
        assert_eq!(body.next().await, None, "the body ends after the close");
        drop(transport);
        assert_eq!(streams.len(), 0, "a dropped transport leaves the registry");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_gets_a_comment_every_heartbeat() {
        let streams = Arc::new(Streams::default());
        let (mut body, mut transport) = streams.open("id".into(), Duration::from_secs(15));
        body.next().await.unwrap(); // open
        let waiting = tokio::time::timeout(Duration::from_secs(31), transport.recv()).await;
        assert!(waiting.is_err(), "nothing arrived from the client");
        assert_eq!(body.next().await.unwrap(), ":\n\n");
        assert_eq!(body.next().await.unwrap(), ":\n\n");
        assert!(futures_util::FutureExt::now_or_never(body.next()).is_none());
    }

    #[tokio::test]
    async fn a_post_hands_over_each_line_in_order_across_chunks() {
        let streams = Arc::new(Streams::default());
        let (_body, mut transport) = open(&streams);
        let mut post = streams.post(ID, 64).unwrap();
        post.push(b"{\"one\":1}\r\n{\"tw").await.unwrap();
        post.push(b"o\":2}\n\n").await.unwrap();
        post.push(b"{\"three\":3}").await.unwrap();
        post.finish().await.unwrap();
        assert_eq!(
            frames(&mut transport),
            [
                text("{\"one\":1}"),
                text("{\"two\":2}"),
                text("{\"three\":3}")
            ]
        );
        // An empty request is a sign of life.
        streams.post(ID, 64).unwrap().finish().await.unwrap();
        assert_eq!(frames(&mut transport), [Incoming::Activity]);
        assert!(streams.close(ID).await);
        assert_eq!(frames(&mut transport), [Incoming::Closed]);
    }

    #[tokio::test]
    async fn a_line_too_long_or_not_utf8_is_a_violation() {
        let streams = Arc::new(Streams::default());
        let (_body, mut transport) = open(&streams);
        let mut post = streams.post(ID, 8).unwrap();
        post.push(b"12345").await.unwrap();
        assert_eq!(post.push(b"6789").await, Err(PostError::TooBig));
        drop(post); // the request ends: the next one may hand over its frames
        assert_eq!(
            frames(&mut transport),
            [Incoming::Violation(Close::too_big())]
        );
        let mut post = streams.post(ID, 8).unwrap();
        assert_eq!(post.push(b"\xff\xfe\n").await, Err(PostError::Malformed));
        assert_eq!(
            frames(&mut transport),
            [Incoming::Violation(Close::malformed())]
        );
    }

    #[tokio::test]
    async fn the_body_dropped_is_a_lost_connection_and_posts_find_no_stream() {
        let streams = Arc::new(Streams::default());
        let (body, mut transport) = open(&streams);
        drop(body);
        assert_eq!(transport.recv().await, Incoming::Lost);
        assert!(transport.send("x".into()).await.is_err());
        drop(transport);
        assert!(streams.post(ID, 8).is_none());
        assert!(!streams.close(ID).await);
    }
}
