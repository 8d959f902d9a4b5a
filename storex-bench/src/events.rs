//! The load generator's client of the event-stream transport (PROTOCOL.md, "The event-stream
//! transport"): one connection reads `GET <path>/sse` (an HTTP/1.1 chunked body of SSE events),
//! another sends the frames as `POST <path>/sse/ID` requests, one at a time, each taking every
//! frame queued before it (as storex.js does): queued frames go out when the client has read
//! every answer already arrived and would wait for the next. HTTP heads and chunk sizes are parsed
//! by httparse.

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{Frames, PATIENCE};

/// One connection over the event-stream transport.
#[derive(Debug)]
pub struct EventSocket {
    /// The stream's connection.
    stream: TcpStream,
    /// Bytes of the chunked body not yet decoded.
    raw: Vec<u8>,
    /// Decoded event text not yet taken as events.
    text: String,
    /// The connection the frames are posted on (kept alive between requests).
    post: TcpStream,
    /// The request line and fixed headers of every `POST`.
    post_head: String,
    /// Frames queued for the next `POST`.
    queued: Vec<String>,
}

/// One event of the stream.
struct Event {
    kind: String,
    data: String,
}

async fn connect(server: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(server)
        .await
        .map_err(|e| format!("connect {server}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    Ok(stream)
}

/// Reads an HTTP response head from `stream` into `buffer`: its status, its
/// `transfer-encoding` header, and how many bytes of `buffer` it took.
async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<(u16, Option<String>, usize), String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let encoding = response
                    .headers
                    .iter()
                    .find(|header| header.name.eq_ignore_ascii_case("transfer-encoding"))
                    .map(|header| String::from_utf8_lossy(header.value).into_owned());
                return Ok((response.code.unwrap_or(0), encoding, len));
            }
            Ok(httparse::Status::Partial) => {}
            Err(error) => return Err(format!("not an HTTP answer: {error}")),
        }
        if stream
            .read_buf(buffer)
            .await
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("the connection ended in an HTTP head".into());
        }
    }
}

/// Opens an event stream at `path` (the endpoint's, e.g. `/storex`) on `server`.
pub async fn open(server: SocketAddr, path: &str) -> Result<EventSocket, String> {
    let opening = async {
        let mut stream = connect(server).await?;
        let request = format!(
            "GET {path}/sse HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::with_capacity(4096);
        let (status, encoding, len) = read_head(&mut stream, &mut raw).await?;
        if status != 200 || encoding.as_deref() != Some("chunked") {
            return Err(format!(
                "GET {path}/sse answered {status} ({encoding:?}), not a chunked 200"
            ));
        }
        raw.drain(..len);
        let mut socket = EventSocket {
            stream,
            raw,
            text: String::new(),
            post: connect(server).await?,
            post_head: String::new(),
            queued: Vec::new(),
        };
        let opened = socket.event().await?;
        let id = serde_json::from_str::<serde_json::Value>(&opened.data)
            .ok()
            .filter(|_| opened.kind == "open")
            .and_then(|data| data["stream"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("not an open event: {} {}", opened.kind, opened.data))?;
        socket.post_head = format!(
            "POST {path}/sse/{id} HTTP/1.1\r\nHost: {server}\r\nContent-Type: text/plain;charset=UTF-8\r\n"
        );
        Ok(socket)
    };
    tokio::time::timeout(PATIENCE, opening)
        .await
        .map_err(|_| format!("no event stream from {server} within {PATIENCE:?}"))?
}

impl EventSocket {
    /// The next event of the stream (comments skipped).
    async fn event(&mut self) -> Result<Event, String> {
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut kind = "message".to_owned();
                let mut data: Option<String> = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim_start().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match &mut data {
                            Some(data) => {
                                data.push('\n');
                                data.push_str(value);
                            }
                            None => data = Some(value.to_owned()),
                        }
                    }
                }
                if let Some(data) = data {
                    return Ok(Event { kind, data });
                }
            }
            self.decode().await?;
        }
    }

    /// Decodes the next chunk of the body into `text`, reading as much as it needs.
    async fn decode(&mut self) -> Result<(), String> {
        loop {
            if let Ok(httparse::Status::Complete((start, size))) =
                httparse::parse_chunk_size(&self.raw)
            {
                let size = usize::try_from(size).map_err(|_| "a chunk too large")?;
                if size == 0 {
                    return Err("the event stream ended".into());
                }
                let end = start + size;
                if self.raw.len() >= end + 2 {
                    let chunk = std::str::from_utf8(&self.raw[start..end])
                        .map_err(|e| format!("an event that is not UTF-8: {e}"))?;
                    self.text.push_str(chunk);
                    self.raw.drain(..end + 2);
                    return Ok(());
                }
            }
            // About to wait for the server: what is queued goes first.
            self.send_queued().await?;
            if self
                .stream
                .read_buf(&mut self.raw)
                .await
                .map_err(|e| format!("read: {e}"))?
                == 0
            {
                return Err("the event stream's connection ended".into());
            }
        }
    }

    /// POSTs `body` and waits for its 204.
    async fn post(&mut self, body: &str) -> Result<(), String> {
        let request = format!(
            "{}Content-Length: {}\r\n\r\n{body}",
            self.post_head,
            body.len()
        );
        self.post
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::with_capacity(256);
        let (status, _, len) = read_head(&mut self.post, &mut answer).await?;
        if status != 204 || answer.len() != len {
            return Err(format!("a POST of frames answered {status}"));
        }
        Ok(())
    }

    /// Ends the stream with the client's close (`DELETE`).
    pub async fn close(mut self) {
        let request = self.post_head.replacen("POST", "DELETE", 1) + "Content-Length: 0\r\n\r\n";
        let _ = self.post.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, read_head(&mut self.post, &mut answer)).await;
    }

    /// POSTs the queued frames, if any.
    async fn send_queued(&mut self) -> Result<(), String> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let body = self.queued.join("\n");
        self.queued.clear();
        self.post(&body).await
    }
}

impl Frames for EventSocket {
    fn queue(&mut self, text: String) -> impl Future<Output = Result<(), String>> {
        self.queued.push(text);
        async { Ok(()) }
    }

    /// Sends nothing yet: the frames go with the next `POST`, made before the client waits for
    /// the server (the answers already here are read first).
    async fn push_out(&mut self) -> Result<(), String> {
        Ok(())
    }

    async fn next_frame(&mut self) -> Result<String, String> {
        let next = async {
            loop {
                let event = self.event().await?;
                match event.kind.as_str() {
                    "message" => return Ok(event.data),
                    // A sign of life: an empty POST.
                    "ping" => self.post("").await?,
                    "close" => return Err(format!("closed by the server: {}", event.data)),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(PATIENCE, next)
            .await
            .map_err(|_| format!("no frame within {PATIENCE:?}"))?
    }
}
