//! One client connection of the fault proxy. It reads each request, looks up the script's action,
//! and forwards, answers, cuts or resets the request accordingly. Each request gets its own upstream connection,
//! which is closed after the reply, so a fault on one request never leaks into the next.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::body::{BodySink, Copied, Framing, Head, copy_body, read_head};
use super::rules::{Action, RequestHead, Script, SeenRequest};

const BUFFER_BYTES: usize = 64 * 1024;

/// State shared by the proxy handle and every connection task.
pub(crate) struct Shared {
    pub upstream: SocketAddr,
    pub script: Mutex<Script>,
    pub seen: Mutex<Vec<SeenRequest>>,
    /// Number of entries in `seen`, so tests can wait for a request to arrive.
    pub seen_count: watch::Sender<usize>,
}

impl Shared {
    fn decide(&self, request: &RequestHead) -> Action {
        let mut script = self.script.lock().unwrap_or_else(PoisonError::into_inner);
        script.decide(request)
    }

    fn record(&self, entry: SeenRequest) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push(entry);
        let count = seen.len();
        self.seen_count.send_replace(count);
        count - 1
    }

    fn update(&self, index: usize, change: impl FnOnce(&mut SeenRequest)) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = seen.get_mut(index) {
            change(entry);
        }
    }
}

/// Next step for the client connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    KeepAlive,
    Close,
    /// Close with SO_LINGER 0, so the kernel sends RST instead of FIN.
    Reset,
}

/// Treatment of the upstream reply once the request has been forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyPlan {
    Forward,
    /// Send the head and this many body bytes, then reset or close.
    CutAfter {
        bytes: u64,
        reset: bool,
    },
    /// Read the whole reply and send the client nothing but interim `1xx` replies.
    Drop,
}

pub(crate) async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    let (read_half, mut write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, read_half);
    let ending = loop {
        match handle_request(&mut reader, &mut write_half, &shared).await {
            Ok(Ending::KeepAlive) => continue,
            Ok(ending) => break ending,
            Err(error) => {
                tracing::debug!(?peer, %error, "fault proxy closing client connection after error");
                break Ending::Close;
            }
        }
    };
    match ending {
        Ending::Reset => reset(reader.into_inner(), write_half),
        Ending::Close | Ending::KeepAlive => {
            let _ = write_half.shutdown().await;
        }
    }
}

fn reset(read_half: OwnedReadHalf, write_half: OwnedWriteHalf) {
    match read_half.reunite(write_half) {
        Ok(stream) => {
            if let Err(error) = stream.set_zero_linger() {
                tracing::warn!(%error, "fault proxy could not set SO_LINGER 0; closing with FIN");
            }
        }
        Err(error) => tracing::warn!(%error, "fault proxy could not rejoin socket halves"),
    }
}

async fn handle_request(
    reader: &mut BufReader<OwnedReadHalf>,
    client: &mut OwnedWriteHalf,
    shared: &Shared,
) -> io::Result<Ending> {
    let Some(head) = read_head(reader, true).await? else {
        return Ok(Ending::Close);
    };
    let request = RequestHead {
        method: head.method_or_status.clone(),
        path_and_query: head.target.clone(),
        header_names: head.headers.iter().map(|(name, _)| name.clone()).collect(),
    };
    let framing = head.request_framing()?;
    let action = shared.decide(&request);
    tracing::debug!(
        method = %request.method,
        target = %request.path_and_query,
        action = ?action,
        "fault proxy received request"
    );
    let index = shared.record(SeenRequest {
        method: request.method.clone(),
        path_and_query: request.path_and_query.clone(),
        status: None,
        upstream_status: None,
        action_taken: action.clone(),
    });
    let exchange = Exchange {
        head: &head,
        framing,
        shared,
        index,
    };
    let ending = match action {
        Action::Forward => {
            exchange
                .forward(reader, client, None, ReplyPlan::Forward)
                .await?
        }
        Action::Delay(delay) => {
            tokio::time::sleep(delay).await;
            exchange
                .forward(reader, client, None, ReplyPlan::Forward)
                .await?
        }
        Action::ResetAfterRequestBytes(bytes) => {
            exchange
                .forward(reader, client, Some(bytes), ReplyPlan::Forward)
                .await?
        }
        Action::ResetAfterResponseBytes(bytes) => {
            let plan = ReplyPlan::CutAfter { bytes, reset: true };
            exchange.forward(reader, client, None, plan).await?
        }
        Action::TruncateResponse { after } => {
            let plan = ReplyPlan::CutAfter {
                bytes: after,
                reset: false,
            };
            exchange.forward(reader, client, None, plan).await?
        }
        Action::DropReply => {
            exchange
                .forward(reader, client, None, ReplyPlan::Drop)
                .await?
        }
        Action::Respond {
            status,
            headers,
            body,
        } => {
            exchange
                .respond(reader, client, status, &headers, &body)
                .await?
        }
    };
    Ok(ending)
}

/// One request being handled, with what is needed to forward it and record the outcome.
struct Exchange<'a> {
    head: &'a Head,
    framing: Framing,
    shared: &'a Shared,
    index: usize,
}

impl Exchange<'_> {
    /// Sends a canned reply without contacting the upstream.
    async fn respond(
        &self,
        reader: &mut BufReader<OwnedReadHalf>,
        client: &mut OwnedWriteHalf,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> io::Result<Ending> {
        // A client that sent `Expect: 100-continue` holds its body back until the server sends
        // `100 Continue`, so it gets the reply at once and the connection is closed unread.
        let expects_continue = self.head.headers.iter().any(|(name, value)| {
            name == "expect" && value.trim().eq_ignore_ascii_case("100-continue")
        });
        let close = expects_continue || self.head.wants_close();

        if !expects_continue {
            let mut discard = BodySink::<OwnedWriteHalf>::new(None, None);
            copy_body(reader, self.framing, &mut discard).await?;
        }

        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("Unknown");
        let mut reply = format!("HTTP/1.1 {status} {reason}\r\n");
        for (name, value) in headers {
            reply.push_str(&format!("{name}: {value}\r\n"));
        }
        reply.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if close {
            reply.push_str("Connection: close\r\n");
        }
        reply.push_str("\r\n");

        self.shared
            .update(self.index, |entry| entry.status = Some(status));
        client.write_all(reply.as_bytes()).await?;
        client.write_all(body).await?;
        Ok(if close {
            Ending::Close
        } else {
            Ending::KeepAlive
        })
    }

    /// Forwards the request, streaming its body while the reply is read, and handles the reply
    /// according to `plan`. With `request_limit`, only that many body bytes are forwarded and the client
    /// connection is reset.
    async fn forward(
        &self,
        reader: &mut BufReader<OwnedReadHalf>,
        client: &mut OwnedWriteHalf,
        request_limit: Option<u64>,
        plan: ReplyPlan,
    ) -> io::Result<Ending> {
        let upstream = match TcpStream::connect(self.shared.upstream).await {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::warn!(upstream = %self.shared.upstream, %error, "fault proxy could not reach the upstream");
                let body = format!(
                    "fault proxy could not reach upstream {}",
                    self.shared.upstream
                );
                let headers = [("Content-Type".to_owned(), "text/plain".to_owned())];
                return self
                    .respond(reader, client, 502, &headers, body.as_bytes())
                    .await;
            }
        };
        let _ = upstream.set_nodelay(true);
        let (upstream_read, mut upstream_write) = upstream.into_split();
        let mut upstream_reader = BufReader::with_capacity(BUFFER_BYTES, upstream_read);
        upstream_write.write_all(&self.head.raw).await?;

        let request_side = async {
            let mut sink = BodySink::new(Some(&mut upstream_write), request_limit);
            copy_body(reader, self.framing, &mut sink).await
        };
        let reply_side = self.handle_reply(&mut upstream_reader, client, plan);
        tokio::pin!(request_side, reply_side);

        let mut request_sent = false;
        loop {
            tokio::select! {
                copied = &mut request_side, if !request_sent => {
                    let copied: Copied = copied?;
                    if request_limit.is_some() {
                        tracing::debug!(?copied, "fault proxy resetting client after request bytes");
                        return Ok(Ending::Reset);
                    }
                    request_sent = true;
                }
                ending = &mut reply_side => {
                    let ending = ending?;
                    // The upstream replied before the whole request body arrived, so the rest of
                    // that body is still on the client connection and it cannot be reused.
                    return Ok(if request_sent { ending } else { Ending::Close });
                }
            }
        }
    }

    async fn handle_reply<W: AsyncWrite + Unpin>(
        &self,
        upstream: &mut BufReader<OwnedReadHalf>,
        client: &mut W,
        plan: ReplyPlan,
    ) -> io::Result<Ending> {
        let method = self.head.method_or_status.as_str();
        let head = loop {
            let Some(head) = read_head(upstream, false).await? else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed the connection without a reply",
                ));
            };
            let status = head.status();
            // Interim replies such as `100 Continue` go to the client whatever the plan, because
            // the client may be waiting for one before it sends the body.
            if (100..200).contains(&status) && status != 101 {
                client.write_all(&head.raw).await?;
                continue;
            }
            break head;
        };
        let status = head.status();
        let framing = head.response_framing(method)?;
        let close = self.head.wants_close() || head.wants_close() || framing == Framing::UntilClose;

        if plan == ReplyPlan::Drop {
            self.shared
                .update(self.index, |entry| entry.upstream_status = Some(status));
            let mut discard = BodySink::<W>::new(None, None);
            copy_body(upstream, framing, &mut discard).await?;
            tracing::debug!(status, "fault proxy dropped the upstream reply");
            return Ok(Ending::Close);
        }

        self.shared.update(self.index, |entry| {
            entry.upstream_status = Some(status);
            entry.status = Some(status);
        });
        client.write_all(&head.raw).await?;
        match plan {
            ReplyPlan::CutAfter { bytes, reset } => {
                let mut sink = BodySink::new(Some(client), Some(bytes));
                let copied = copy_body(upstream, framing, &mut sink).await?;
                tracing::debug!(?copied, bytes, reset, "fault proxy cut the reply body");
                Ok(if reset { Ending::Reset } else { Ending::Close })
            }
            ReplyPlan::Forward | ReplyPlan::Drop => {
                let mut sink = BodySink::new(Some(client), None);
                copy_body(upstream, framing, &mut sink).await?;
                Ok(if close {
                    Ending::Close
                } else {
                    Ending::KeepAlive
                })
            }
        }
    }
}
