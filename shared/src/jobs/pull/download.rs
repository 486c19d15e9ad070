//! A backup download that survives cut connections and expired links. It reopens the URL with a
//! `Range` from the first byte not yet delivered, and looks up a fresh URL with
//! `DescribeBackups` when the old one has expired or is about to.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;

use super::catalog::{BackupCatalog, window_around};
use crate::retry::RetryPolicy;
use crate::storage::http::{is_expired_url, presigned_expiry, redact};
use crate::storage::{ByteRange, ByteStream, ErrorKind, ObjectInfo, ObjectSource, StorageError};
use crate::validate::backup::DownloadNetwork;

/// Where a backup's download URL comes from, and how to get a fresh one.
#[derive(Clone)]
pub(super) struct BackupLink {
    pub catalog: Arc<dyn BackupCatalog>,
    pub instance_id: String,
    pub backup_id: String,
    pub backup_start: DateTime<Utc>,
    pub network: DownloadNetwork,
    /// A URL that expires sooner than this is replaced before a request.
    pub expiry_margin: TimeDelta,
}

impl BackupLink {
    /// Looks the backup up again and returns its current download URL.
    pub(super) async fn fresh_url(&self) -> Result<String, StorageError> {
        let failed = |kind: ErrorKind, message: String| {
            StorageError::new(
                kind,
                "DescribeBackups",
                format!("{}/{}", self.instance_id, self.backup_id),
                message,
            )
        };
        let window = window_around(self.backup_start)
            .map_err(|error| failed(ErrorKind::Permanent, error.to_string()))?;
        let backup = self
            .catalog
            .find_backup(&self.instance_id, &self.backup_id, &window)
            .await
            .map_err(|error| {
                let kind = if error.is_retryable() {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Permanent
                };
                failed(kind, error.to_string())
            })?
            .ok_or_else(|| {
                failed(
                    ErrorKind::NotFound,
                    "the backup is no longer listed, so no fresh download url exists".into(),
                )
            })?;
        let url = match self.network {
            DownloadNetwork::Public => backup.download_url,
            DownloadNetwork::Intranet => backup.intranet_download_url,
        };
        let url = url.ok_or_else(|| {
            failed(
                ErrorKind::Permanent,
                "the backup is listed without a download url".into(),
            )
        })?;
        tracing::info!(
            instance_id = self.instance_id,
            backup_id = self.backup_id,
            url = %redact(&url),
            "fetched a fresh download url"
        );
        Ok(url)
    }

    /// Returns true when `url` expires within the margin.
    fn expires_soon(&self, url: &str) -> bool {
        presigned_expiry(url).is_some_and(|expiry| expiry <= Utc::now() + self.expiry_margin)
    }
}

/// The first response of a download and what it reported.
pub(super) struct OpenedDownload {
    /// Total size of the object (`Content-Length`, or the total of `Content-Range`).
    pub size: u64,
    /// `x-oss-hash-crc64ecma` of the whole object, when sent.
    pub crc64: Option<u64>,
    /// The body from the requested offset to the end, reopened as needed.
    pub body: ByteStream,
    /// The URL that the body reads now, replaced when it expires and shared with ranged reads.
    pub url: SharedUrl,
}

/// The current download URL of one backup, shared by everything that reads it, so that one
/// refresh serves them all.
pub(super) type SharedUrl = Arc<std::sync::Mutex<String>>;

fn set_url(shared: &SharedUrl, url: &str) {
    *shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = url.to_string();
}

fn get_url(shared: &SharedUrl) -> String {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// What a download must report: nothing for a fresh pull, and the size and CRC-64 of the first
/// run's download for a resumed one.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Expected {
    pub size: Option<u64>,
    pub crc64: Option<u64>,
}

/// Opens the download at byte `offset`, refreshing an expired URL first.
///
/// The first response's size and CRC-64 (or `expected`) are the contract of every reopen: a
/// response that reports another size or CRC-64 fails the stream, because the object behind the
/// URL changed. `retry` bounds the attempts in a row that deliver no byte.
pub(super) async fn open(
    source: Arc<dyn ObjectSource>,
    link: BackupLink,
    url: String,
    offset: u64,
    expected: Expected,
    retry: RetryPolicy,
) -> Result<OpenedDownload, StorageError> {
    let shared_url = Arc::new(std::sync::Mutex::new(url.clone()));
    let mut reader = Reader {
        source,
        link,
        url,
        shared_url: shared_url.clone(),
        offset,
        size: expected.size,
        crc64: expected.crc64,
        body: None,
        failures: 0,
        retry,
        finished: false,
    };
    if Some(offset) != reader.size {
        reader.reopen().await?;
    }
    let size = reader.size.unwrap_or_default();
    let crc64 = reader.crc64;
    let body = futures::stream::unfold(reader, |mut reader| async move {
        let item = reader.next_chunk().await?;
        Some((item, reader))
    });
    Ok(OpenedDownload {
        size,
        crc64,
        body: Box::pin(body),
        url: shared_url,
    })
}

struct Reader {
    source: Arc<dyn ObjectSource>,
    link: BackupLink,
    url: String,
    /// Receives `url` whenever it is replaced.
    shared_url: SharedUrl,
    /// The next byte to deliver.
    offset: u64,
    size: Option<u64>,
    crc64: Option<u64>,
    body: Option<ByteStream>,
    /// Consecutive failures without a delivered byte.
    failures: u32,
    retry: RetryPolicy,
    finished: bool,
}

impl Reader {
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, StorageError>> {
        loop {
            if self.finished || Some(self.offset) == self.size {
                return None;
            }
            if self.body.is_none()
                && let Err(error) = self.reopen().await
            {
                self.finished = true;
                return Some(Err(error));
            }
            let body = self.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    self.offset += chunk.len() as u64;
                    self.failures = 0;
                    return Some(Ok(chunk));
                }
                Some(Err(error)) if error.is_retryable() => {
                    tracing::warn!(
                        url = %redact(&self.url),
                        offset = self.offset,
                        %error,
                        "download failed mid-stream; reopening with a range"
                    );
                    self.body = None;
                    if let Err(error) = self.backoff(error).await {
                        self.finished = true;
                        return Some(Err(error));
                    }
                }
                Some(Err(error)) => {
                    self.finished = true;
                    return Some(Err(error));
                }
                // The counted body fails a short body itself, so an early end is unexpected.
                None => {
                    self.body = None;
                    let error = StorageError::new(
                        ErrorKind::Transient,
                        "GetObject",
                        redact(&self.url),
                        format!("body ended at byte {}", self.offset),
                    );
                    if let Err(error) = self.backoff(error).await {
                        self.finished = true;
                        return Some(Err(error));
                    }
                }
            }
        }
    }

    /// Counts a failure and waits before the next attempt, or returns the error when the
    /// attempts are used up.
    async fn backoff(&mut self, error: StorageError) -> Result<(), StorageError> {
        self.failures += 1;
        if self.failures >= self.retry.max_attempts {
            return Err(error);
        }
        tokio::time::sleep(self.retry.delay(self.failures)).await;
        Ok(())
    }

    /// Opens the body from `offset`, with a fresh URL when the current one expired.
    async fn reopen(&mut self) -> Result<(), StorageError> {
        loop {
            if self.link.expires_soon(&self.url) {
                self.url = self.link.fresh_url().await?;
                set_url(&self.shared_url, &self.url);
            }
            let range = match (self.offset, self.size) {
                (0, _) => None,
                (first, Some(size)) => Some(ByteRange {
                    first,
                    last: size.saturating_sub(1),
                }),
                // A presigned URL cannot ask for an open-ended range that OSS honours, so a
                // download that starts past byte 0 needs the size up front.
                (first, None) => {
                    return Err(StorageError::new(
                        ErrorKind::Permanent,
                        "GetObject",
                        redact(&self.url),
                        format!("cannot resume at byte {first} without the object size"),
                    ));
                }
            };
            match self.source.get(&self.url, range).await {
                Ok((info, body)) => {
                    self.check_same_object(&info)?;
                    self.body = Some(body);
                    return Ok(());
                }
                Err(error) if is_expired_url(&error) => {
                    tracing::warn!(url = %redact(&self.url), "download url expired; fetching a fresh one");
                    self.backoff(error).await?;
                    self.url = self.link.fresh_url().await?;
                    set_url(&self.shared_url, &self.url);
                }
                Err(error) if error.is_retryable() => self.backoff(error).await?,
                Err(error) => return Err(error),
            }
        }
    }

    /// Checks a reply against what earlier replies reported, and learns what they did not.
    fn check_same_object(&mut self, info: &ObjectInfo) -> Result<(), StorageError> {
        check_same_object(&self.url, self.size, self.crc64, info)?;
        self.size.get_or_insert(info.size);
        if self.crc64.is_none() {
            self.crc64 = info.crc64;
        }
        Ok(())
    }
}

/// Fails with a permanent error when `info` reports a size or CRC-64 other than the expected
/// one, which means the backup changed between requests. An expected value that is not known
/// yet, or a CRC-64 that the reply leaves out, passes.
fn check_same_object(
    url: &str,
    size: Option<u64>,
    crc64: Option<u64>,
    info: &ObjectInfo,
) -> Result<(), StorageError> {
    let changed = |message: String| {
        StorageError::new(ErrorKind::Permanent, "GetObject", redact(url), message)
    };
    if let Some(known) = size
        && known != info.size
    {
        return Err(changed(format!(
            "object size changed from {known} to {} bytes between requests",
            info.size
        )));
    }
    if let (Some(known), Some(reported)) = (crc64, info.crc64)
        && known != reported
    {
        return Err(changed(format!(
            "object CRC-64 changed from {known} to {reported} between requests"
        )));
    }
    Ok(())
}

/// A backup download read by ranges, for the engine's ranged copy ([`Transfer::run_ranged`]).
/// The key of every call is ignored, since the URL is the object. Every reply must report the
/// size and CRC-64 that the copy started with, and an expired URL is replaced from
/// `DescribeBackups` and the range asked for again.
///
/// [`Transfer::run_ranged`]: crate::transfer::Transfer::run_ranged
pub(super) struct RangedDownload {
    source: Arc<dyn ObjectSource>,
    link: BackupLink,
    url: SharedUrl,
    size: u64,
    crc64: u64,
    retry: RetryPolicy,
}

impl RangedDownload {
    pub(super) fn new(
        source: Arc<dyn ObjectSource>,
        link: BackupLink,
        url: SharedUrl,
        size: u64,
        crc64: u64,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            source,
            link,
            url,
            size,
            crc64,
            retry,
        }
    }

    fn current_url(&self) -> String {
        get_url(&self.url)
    }

    /// Replaces `stale`, unless a parallel read has replaced it already.
    async fn refresh_url(&self, stale: &str) -> Result<String, StorageError> {
        let current = self.current_url();
        if current != stale {
            return Ok(current);
        }
        let url = self.link.fresh_url().await?;
        set_url(&self.url, &url);
        Ok(url)
    }
}

#[async_trait::async_trait]
impl ObjectSource for RangedDownload {
    fn location(&self, _key: &str) -> String {
        redact(&self.current_url())
    }

    /// Returns what the first response reported, because a presigned GET URL cannot be used
    /// for HEAD.
    async fn head(&self, _key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        Ok(Some(ObjectInfo {
            size: self.size,
            etag: None,
            crc64: Some(self.crc64),
            metadata: std::collections::BTreeMap::new(),
        }))
    }

    async fn get(
        &self,
        _key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        let mut url = self.current_url();
        if self.link.expires_soon(&url) {
            url = self.refresh_url(&url).await?;
        }
        let mut attempt = 1;
        loop {
            match self.source.get(&url, range).await {
                Ok((info, body)) => {
                    check_same_object(&url, Some(self.size), Some(self.crc64), &info)?;
                    return Ok((info, body));
                }
                Err(error) if is_expired_url(&error) && attempt < self.retry.max_attempts => {
                    tracing::warn!(url = %redact(&url), "download url expired; fetching a fresh one");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                    url = self.refresh_url(&url).await?;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
