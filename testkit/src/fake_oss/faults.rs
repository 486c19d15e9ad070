//! Injected faults: a download that stops mid-body, as a reset connection does.

use axum::body::Body;
use futures::StreamExt;
use tokio_util::io::ReaderStream;

use std::io::SeekFrom;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Streams `length` bytes of `file` from offset `first`. With `cut_after`, the body ends with an
/// error after that many bytes, so the server closes the connection while `Content-Length`
/// promised more.
pub(crate) fn file_body(
    file: tokio::fs::File,
    first: u64,
    length: u64,
    cut_after: Option<u64>,
) -> Body {
    let sent = cut_after.map_or(length, |cut| cut.min(length));
    let cut = sent < length;
    let opened = futures::stream::once(async move {
        let mut file = file;
        file.seek(SeekFrom::Start(first))
            .await
            .map(|_| ReaderStream::with_capacity(file.take(sent), 256 * 1024))
    });
    let data = opened.flat_map(|result| match result {
        Ok(reader) => reader.left_stream(),
        Err(error) => futures::stream::once(async move { Err(error) }).right_stream(),
    });
    if cut {
        let failure = futures::stream::once(async move {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                format!("fake OSS cut the download after {sent} bytes"),
            ))
        });
        Body::from_stream(data.chain(failure))
    } else {
        Body::from_stream(data)
    }
}
