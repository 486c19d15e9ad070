//! A read-only comparison of an export's S3 objects with their OSS copies, for reporting. It
//! HEADs each OSS key and copies nothing, unlike the reconciliation of `rds-export-poll`.

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::jobs::sync::SyncSettings;
use crate::storage::{ObjectLister, ObjectSink, StorageError};

/// HEAD requests in flight at once.
const CONCURRENT_HEADS: usize = 8;

/// How many objects under an export's prefix have reached OSS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Objects listed under the prefix in S3.
    pub listed: u64,
    /// Objects whose OSS copy exists with the same size.
    pub present: u64,
    /// Objects with no OSS copy.
    pub missing: u64,
    /// Objects whose OSS copy has a different size.
    pub different: u64,
    /// Objects outside the sync prefix, which the sync never copies.
    pub outside_prefix: u64,
}

/// Lists `key_prefix` with `lister` and HEADs the OSS key of each object in `oss`, mapped by the
/// prefixes of `settings`.
///
/// # Errors
/// The first listing or HEAD failure.
pub async fn compare_export(
    lister: &dyn ObjectLister,
    oss: &dyn ObjectSink,
    settings: &SyncSettings,
    key_prefix: &str,
) -> Result<SyncCounts, StorageError> {
    let objects = lister.list(key_prefix).await?;
    let mut counts = SyncCounts {
        listed: objects.len() as u64,
        ..SyncCounts::default()
    };
    let targets: Vec<(String, u64)> = objects
        .iter()
        .filter_map(|object| {
            let target = settings.target_key(&object.key);
            if target.is_none() {
                counts.outside_prefix += 1;
            }
            target.map(|key| (key, object.size))
        })
        .collect();
    let heads: Vec<(u64, Option<u64>)> = stream::iter(targets)
        .map(|(key, size)| async move {
            let info = oss.head(&key).await?;
            Ok::<_, StorageError>((size, info.map(|info| info.size)))
        })
        .buffer_unordered(CONCURRENT_HEADS)
        .try_collect()
        .await?;
    for (size, copy_size) in heads {
        match copy_size {
            None => counts.missing += 1,
            Some(copy_size) if copy_size == size => counts.present += 1,
            Some(_) => counts.different += 1,
        }
    }
    Ok(counts)
}
