//! The disk store behind the fake: object and part bodies live in files under a temporary
//! directory, and only their metadata is kept in memory, so tests can move objects of hundreds of
//! MiB without holding them in RAM.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use axum::body::Body;
use backup_bridge::checksum::Crc64;
use backup_bridge::transfer::crc64_combine;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use md5::{Digest, Md5};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;

/// An object as the fake stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// CRC-64/XZ of the whole body, the value of `x-oss-hash-crc64ecma`.
    pub crc64: u64,
    /// The `ETag` header value, quoted: `"MD5HEX"` for a single upload, `"HEX-N"` for multipart.
    pub etag: String,
    pub content_type: String,
    /// User metadata: the `x-oss-meta-` header names without that prefix, lowercase.
    pub metadata: BTreeMap<String, String>,
    pub last_modified: DateTime<Utc>,
    /// Number of parts when the object came from a multipart upload.
    pub parts: Option<usize>,
    /// The file that contains the body.
    pub path: PathBuf,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub size: u64,
    pub md5: [u8; 16],
    pub crc64: u64,
    pub last_modified: DateTime<Utc>,
    pub path: PathBuf,
}

impl Part {
    /// Returns the part ETag as OSS writes it: uppercase MD5 hex in quotes.
    pub fn etag(&self) -> String {
        format!("\"{}\"", hex::encode_upper(self.md5))
    }
}

/// A multipart upload that is neither completed nor aborted.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub bucket: String,
    pub key: String,
    pub initiated: DateTime<Utc>,
    pub content_type: String,
    pub metadata: BTreeMap<String, String>,
    pub parts: BTreeMap<u32, Part>,
    /// Set while a Complete request assembles the object, so a second Complete or a new part
    /// cannot change it underneath.
    pub completing: bool,
}

/// A body written to a temporary file, with the checksums computed while it streamed in.
#[derive(Debug)]
pub(crate) struct WrittenBody {
    pub path: PathBuf,
    pub size: u64,
    pub crc64: u64,
    pub md5: [u8; 16],
}

#[derive(Default)]
pub(crate) struct StoreState {
    pub objects: HashMap<(String, String), StoredObject>,
    pub uploads: HashMap<String, Upload>,
}

pub(crate) struct Store {
    root: TempDir,
    next_file: AtomicU64,
    state: Mutex<StoreState>,
}

impl Store {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            root: tempfile::Builder::new().prefix("fake-oss-").tempdir()?,
            next_file: AtomicU64::new(0),
            state: Mutex::default(),
        })
    }

    /// Locks the metadata; a panic in another request must not take the whole fake down.
    pub fn lock(&self) -> MutexGuard<'_, StoreState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns a fresh file path; every body gets its own file so keys never become file names.
    pub fn new_file_path(&self) -> PathBuf {
        let number = self.next_file.fetch_add(1, Ordering::Relaxed);
        self.root.path().join(format!("body-{number}"))
    }

    /// Streams a request body into a new file, computing size, CRC-64 and MD5 on the way. The
    /// file is removed again when the body fails mid-stream.
    pub async fn write_body(&self, body: Body) -> std::io::Result<WrittenBody> {
        let path = self.new_file_path();
        match write_stream(&path, body).await {
            Ok((size, crc64, md5)) => Ok(WrittenBody {
                path,
                size,
                crc64,
                md5,
            }),
            Err(error) => {
                remove_file(&path);
                Err(error)
            }
        }
    }

    /// Writes `bytes` to a new file synchronously, for seeding objects without HTTP.
    pub fn write_bytes(&self, bytes: &[u8]) -> std::io::Result<WrittenBody> {
        let path = self.new_file_path();
        std::fs::write(&path, bytes)?;
        let mut crc = Crc64::new();
        crc.update(bytes);
        Ok(WrittenBody {
            path,
            size: bytes.len() as u64,
            crc64: crc.value(),
            md5: Md5::digest(bytes).into(),
        })
    }
}

async fn write_stream(path: &Path, body: Body) -> std::io::Result<(u64, u64, [u8; 16])> {
    let file = tokio::fs::File::create(path).await?;
    let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let mut crc = Crc64::new();
    let mut md5 = Md5::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        crc.update(&chunk);
        md5.update(&chunk);
        size += chunk.len() as u64;
        writer.write_all(&chunk).await?;
    }
    writer.flush().await?;
    Ok((size, crc.value(), md5.finalize().into()))
}

/// Joins the part files into `target` and returns the object's CRC-64, combined from the CRC-64
/// that each part had when it arrived. The kernel copies the files (`copy_file_range`), so
/// completing a large upload does not read every byte through this process again, much as
/// OSS completes an upload without rewriting its parts.
pub(crate) fn concatenate(parts: &[(PathBuf, u64, u64)], target: &Path) -> std::io::Result<u64> {
    let mut output = std::fs::File::create(target)?;
    let mut crc = 0u64;
    for (path, size, part_crc64) in parts {
        let mut input = std::fs::File::open(path)?;
        let copied = std::io::copy(&mut input, &mut output)?;
        if copied != *size {
            return Err(std::io::Error::other(format!(
                "part file {} contains {copied} bytes, expected {size}",
                path.display()
            )));
        }
        crc = crc64_combine(crc, *part_crc64, *size);
    }
    Ok(crc)
}

/// Computes the multipart ETag: MD5 over the concatenated binary part MD5s, then `-<parts>`.
pub(crate) fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut md5 = Md5::new();
    for digest in part_md5s {
        md5.update(digest);
    }
    format!(
        "\"{}-{}\"",
        hex::encode_upper(md5.finalize()),
        part_md5s.len()
    )
}

/// Removes a body file; a file that is already gone is fine.
pub(crate) fn remove_file(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "failed to remove a fake OSS body file");
    }
}
