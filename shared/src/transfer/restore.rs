//! A [`TransferState`] without its part list, for a copy with more parts than one Lambda event
//! can carry: the next run lists the parts from the store again.

use super::{PartRecord, TransferError, TransferState};
use crate::retry::{RetryPolicy, retry};
use crate::storage::{ObjectSink, StorageError};

impl TransferState {
    /// Drops the part list, keeping the counters that say which parts must exist.
    #[must_use]
    pub fn without_parts(mut self) -> Self {
        self.parts.clear();
        self
    }

    /// True when the part list was dropped by [`TransferState::without_parts`].
    pub fn parts_elided(&self) -> bool {
        self.parts.is_empty() && self.next_part > 1
    }
}

/// Fills the part list of a state from [`TransferState::without_parts`] with ListParts.
///
/// The upload must hold exactly the parts 1 to `next_part - 1`, each of `part_size` bytes (only
/// the last part of an object may be shorter, and it is not uploaded yet), adding up to
/// `bytes_done`. Parts numbered `next_part` or above, left by a run that stopped before
/// recording them, are ignored: they are uploaded again and replaced.
///
/// # Errors
/// `ResumeMismatch` naming the first missing or wrong part; the sink's error when ListParts
/// fails.
pub async fn restore_parts(
    sink: &dyn ObjectSink,
    state: &mut TransferState,
    policy: &RetryPolicy,
) -> Result<(), TransferError> {
    if !state.parts_elided() {
        return Ok(());
    }
    let location = sink.location(&state.key);
    let listed = retry(policy, StorageError::is_retryable, |_| {
        sink.list_parts(&state.key, &state.upload_id)
    })
    .await
    .map_err(|source| TransferError::Sink {
        location: location.clone(),
        upload_id: Some(state.upload_id.clone()),
        source: Box::new(source),
    })?;
    let mismatch = |detail: String| TransferError::ResumeMismatch {
        location: location.clone(),
        upload_id: state.upload_id.clone(),
        detail,
    };
    let mut parts: Vec<PartRecord> = listed
        .iter()
        .filter(|part| part.part_number < state.next_part)
        .map(PartRecord::from)
        .collect();
    parts.sort_by_key(|part| part.part_number);
    for (index, part) in parts.iter().enumerate() {
        let expected = index as u32 + 1;
        if part.part_number != expected {
            return Err(mismatch(format!(
                "part {expected} is missing from the upload"
            )));
        }
        if part.size != state.part_size {
            return Err(mismatch(format!(
                "part {} has {} bytes instead of {}",
                part.part_number, part.size, state.part_size
            )));
        }
    }
    let listed_bytes: u64 = parts.iter().map(|part| part.size).sum();
    if parts.len() + 1 != state.next_part as usize || listed_bytes != state.bytes_done {
        return Err(mismatch(format!(
            "the upload holds {} parts of {listed_bytes} bytes, the state expects {} parts of {} bytes",
            parts.len(),
            state.next_part - 1,
            state.bytes_done
        )));
    }
    state.parts = parts;
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::storage::PutOptions;
    use crate::storage::memory::MemoryStore;

    const PART: u64 = 1000;

    async fn upload_with_parts(store: &MemoryStore, numbers: &[u32]) -> String {
        let upload_id = store
            .create_multipart("big.xb", &PutOptions::default())
            .await
            .unwrap();
        for &number in numbers {
            store
                .upload_part(
                    "big.xb",
                    &upload_id,
                    number,
                    Bytes::from(vec![7; PART as usize]),
                )
                .await
                .unwrap();
        }
        upload_id
    }

    fn elided_state(upload_id: &str, done_parts: u32) -> TransferState {
        TransferState {
            key: "big.xb".into(),
            upload_id: upload_id.into(),
            size: PART * 10,
            part_size: PART,
            next_part: done_parts + 1,
            bytes_done: PART * u64::from(done_parts),
            crc64: 0,
            parts: Vec::new(),
        }
    }

    #[tokio::test]
    async fn restores_the_part_list_from_the_upload() {
        let store = MemoryStore::new("s3-bucket").with_min_part_size(PART);
        let upload_id = upload_with_parts(&store, &[1, 2, 3, 4]).await;
        // Part 4 was uploaded by a run that stopped before recording it.
        let mut state = elided_state(&upload_id, 3);

        restore_parts(&store, &mut state, &RetryPolicy::default())
            .await
            .unwrap();

        let numbers: Vec<u32> = state.parts.iter().map(|part| part.part_number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert!(state.parts.iter().all(|part| !part.etag.is_empty()));
        assert!(!state.parts_elided());
    }

    #[tokio::test]
    async fn a_missing_part_is_a_resume_mismatch_naming_it() {
        let store = MemoryStore::new("s3-bucket").with_min_part_size(PART);
        let upload_id = upload_with_parts(&store, &[1, 3]).await;
        let mut state = elided_state(&upload_id, 3);

        let error = restore_parts(&store, &mut state, &RetryPolicy::default())
            .await
            .unwrap_err();

        assert!(
            matches!(error, TransferError::ResumeMismatch { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("part 2 is missing"), "{error}");
    }

    #[tokio::test]
    async fn a_state_with_its_parts_is_left_alone() {
        let store = MemoryStore::new("s3-bucket");
        let mut state = elided_state("never-listed", 0);

        restore_parts(&store, &mut state, &RetryPolicy::default())
            .await
            .unwrap();

        assert!(state.parts.is_empty());
    }
}
