//! The listing port: what reconciliation jobs need to compare two buckets key by key.

use async_trait::async_trait;

use super::StorageError;

/// One object as a bucket listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
    /// The ETag without quotes. Multipart ETags differ between clouds, so never compare them
    /// across stores.
    pub etag: Option<String>,
}

/// Lists the objects of one bucket.
#[async_trait]
pub trait ObjectLister: Send + Sync {
    /// Lists every object whose key starts with `prefix`, following all pages, in the store's
    /// key order (UTF-8 binary order on S3).
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError>;
}
