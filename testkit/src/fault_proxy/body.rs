//! HTTP/1.1 message framing for the fault proxy: reading a head, working out how its body is
//! delimited, and copying that body byte for byte (chunk framing included) with an optional cut-off.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Maximum size of a request or reply head, and of one chunk-size or trailer line.
const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// Delimiting of a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// A reply body that runs until the upstream closes the connection.
    UntilClose,
}

/// A parsed head plus the raw bytes it was parsed from, which are forwarded unchanged.
pub(crate) struct Head {
    pub raw: Vec<u8>,
    pub method_or_status: String,
    pub target: String,
    pub minor_version: u8,
    /// Header names lowercased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .any(|(_, v)| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
    }

    pub fn status(&self) -> u16 {
        self.method_or_status.parse().unwrap_or(0)
    }

    /// Returns whether the sender asked to close the connection after this message.
    pub fn wants_close(&self) -> bool {
        self.minor_version == 0 || self.has_token("connection", "close")
    }

    /// Framing of a request body: chunked, a `Content-Length`, or none.
    pub fn request_framing(&self) -> io::Result<Framing> {
        self.body_framing(Framing::Empty)
    }

    /// Framing of a reply body, which depends on the request method and the status.
    pub fn response_framing(&self, request_method: &str) -> io::Result<Framing> {
        let status = self.status();
        if request_method == "HEAD"
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            return Ok(Framing::Empty);
        }
        self.body_framing(Framing::UntilClose)
    }

    fn body_framing(&self, otherwise: Framing) -> io::Result<Framing> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        match self.header("content-length") {
            Some(value) => value.trim().parse().map(Framing::Length).map_err(|_| {
                invalid(format!(
                    "invalid content-length {value:?}: expected a decimal integer"
                ))
            }),
            None => Ok(otherwise),
        }
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads one head (up to and including the blank line). Returns `None` on a clean end of stream
/// before the first byte, which is how a keep-alive connection ends.
pub(crate) async fn read_head<R>(reader: &mut R, is_request: bool) -> io::Result<Option<Head>>
where
    R: AsyncBufRead + Unpin,
{
    let mut raw = Vec::new();
    loop {
        let budget = MAX_HEAD_BYTES.saturating_sub(raw.len() as u64);
        let read = (&mut *reader)
            .take(budget)
            .read_until(b'\n', &mut raw)
            .await?;
        if read == 0 {
            if raw.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        if !raw.ends_with(b"\n") {
            return Err(invalid(format!(
                "message head longer than {MAX_HEAD_BYTES} bytes"
            )));
        }
        if raw.ends_with(b"\r\n\r\n") || raw.ends_with(b"\n\n") || raw == b"\r\n" {
            if raw == b"\r\n" || raw == b"\n" {
                // A stray line break between pipelined messages, which RFC 9112 lets a reader skip.
                raw.clear();
                continue;
            }
            return parse_head(raw, is_request).map(Some);
        }
    }
}

fn parse_head(raw: Vec<u8>, is_request: bool) -> io::Result<Head> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (method_or_status, target, minor_version, parsed) = if is_request {
        let mut request = httparse::Request::new(&mut slots);
        request
            .parse(&raw)
            .map_err(|e| invalid(format!("invalid request head: {e}")))?;
        (
            request.method.unwrap_or_default().to_owned(),
            request.path.unwrap_or_default().to_owned(),
            request.version.unwrap_or(1),
            request.headers.to_vec(),
        )
    } else {
        let mut response = httparse::Response::new(&mut slots);
        response
            .parse(&raw)
            .map_err(|e| invalid(format!("invalid reply head: {e}")))?;
        (
            response.code.unwrap_or_default().to_string(),
            String::new(),
            response.version.unwrap_or(1),
            response.headers.to_vec(),
        )
    };
    let headers = parsed
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Head {
        raw,
        method_or_status,
        target,
        minor_version,
        headers,
    })
}

/// Destination for copied body bytes, with an optional limit after which copying stops.
pub(crate) struct BodySink<'a, W> {
    writer: Option<&'a mut W>,
    budget: Option<u64>,
}

/// Outcome of a body copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Copied {
    Complete,
    /// The sink's limit was reached; the rest of the body was left unread.
    LimitReached,
}

impl<'a, W: AsyncWrite + Unpin> BodySink<'a, W> {
    /// Writes everything to `writer`, or discards it when `writer` is `None`.
    pub fn new(writer: Option<&'a mut W>, limit: Option<u64>) -> Self {
        Self {
            writer,
            budget: limit,
        }
    }

    /// Writes as much of `bytes` as the limit allows and returns how many bytes it took.
    async fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let allowed = match self.budget {
            Some(budget) => bytes
                .len()
                .min(usize::try_from(budget).unwrap_or(usize::MAX)),
            None => bytes.len(),
        };
        if let Some(writer) = self.writer.as_mut() {
            writer.write_all(&bytes[..allowed]).await?;
        }
        if let Some(budget) = self.budget.as_mut() {
            *budget -= allowed as u64;
        }
        Ok(allowed)
    }

    fn exhausted(&self) -> bool {
        self.budget == Some(0)
    }
}

/// Copies one body with the given framing from `reader` into `sink`, streaming it through the
/// reader's buffer. A zero limit stops before reading anything.
pub(crate) async fn copy_body<R, W>(
    reader: &mut R,
    framing: Framing,
    sink: &mut BodySink<'_, W>,
) -> io::Result<Copied>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => Ok(Copied::Complete),
        Framing::Length(length) => copy_exact(reader, length, sink).await,
        Framing::UntilClose => copy_until_close(reader, sink).await,
        Framing::Chunked => copy_chunked(reader, sink).await,
    }
}

async fn copy_exact<R, W>(
    reader: &mut R,
    length: u64,
    sink: &mut BodySink<'_, W>,
) -> io::Result<Copied>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut remaining = length;
    while remaining > 0 {
        if sink.exhausted() {
            return Ok(Copied::LimitReached);
        }
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed with {remaining} body bytes still expected"),
            ));
        }
        let in_body = available
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let taken = sink.write(&available[..in_body]).await?;
        reader.consume(taken);
        remaining -= taken as u64;
    }
    Ok(Copied::Complete)
}

async fn copy_until_close<R, W>(reader: &mut R, sink: &mut BodySink<'_, W>) -> io::Result<Copied>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        if sink.exhausted() {
            return Ok(Copied::LimitReached);
        }
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Copied::Complete);
        }
        let taken = sink.write(available).await?;
        reader.consume(taken);
    }
}

/// Copies a chunked body as sent: each size line, chunk data and line break, the last chunk and
/// the trailer section.
async fn copy_chunked<R, W>(reader: &mut R, sink: &mut BodySink<'_, W>) -> io::Result<Copied>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        if sink.exhausted() {
            return Ok(Copied::LimitReached);
        }
        let line = read_line(reader).await?;
        let size_text = String::from_utf8_lossy(&line);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("invalid chunk size {size_text:?}")))?;
        if write_line(sink, &line).await? == Copied::LimitReached {
            return Ok(Copied::LimitReached);
        }
        if size == 0 {
            break;
        }
        // The chunk data is followed by CRLF, which is copied with it.
        if copy_exact(reader, size + 2, sink).await? == Copied::LimitReached {
            return Ok(Copied::LimitReached);
        }
    }
    loop {
        if sink.exhausted() {
            return Ok(Copied::LimitReached);
        }
        let line = read_line(reader).await?;
        let last = line == b"\r\n" || line == b"\n";
        if write_line(sink, &line).await? == Copied::LimitReached {
            return Ok(Copied::LimitReached);
        }
        if last {
            return Ok(Copied::Complete);
        }
    }
}

async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *reader)
        .take(MAX_HEAD_BYTES)
        .read_until(b'\n', &mut line)
        .await?;
    if !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed or line too long inside a chunked body",
        ));
    }
    Ok(line)
}

async fn write_line<W: AsyncWrite + Unpin>(
    sink: &mut BodySink<'_, W>,
    line: &[u8],
) -> io::Result<Copied> {
    let taken = sink.write(line).await?;
    if taken < line.len() {
        return Ok(Copied::LimitReached);
    }
    Ok(Copied::Complete)
}
