//! Deduplication across invocations: an alert whose fingerprint was sent within the window is not
//! sent again, even when two Lambdas raise it at the same moment.
//!
//! Time is cut into buckets one window long (bucket = seconds since the epoch / window seconds).
//! The first alert of a fingerprint in a bucket wins the conditional put of
//! `alerts/dedup/<bucket>/<fingerprint>`, so each bucket sends at most once as long as the
//! marker store's create is atomic (S3 `If-None-Match: *`). Buckets alone would
//! let a repeat through right after a bucket boundary, so the marker stores when it was sent, and
//! a marker in the previous bucket less than one window old suppresses the alert as well. The
//! result: a repeat within the window of the last send is never sent.
//!
//! A marker is a claim until its message is delivered: the sender names in it the time by which it
//! will have sent (`claimed_until`, the end of its invocation) and, once the robot accepts the
//! message, writes `<marker>.sent` beside it. A claim that is past its time and has no `.sent`
//! belongs to a sender that died, so the next alert of that fingerprint deletes it and claims
//! afresh instead of being suppressed by a message that never went out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::model::Alert;
use crate::storage::{MarkerStore, StorageError};

/// The key prefix of deduplication markers.
pub const MARKER_PREFIX: &str = "alerts/dedup/";

/// Returns the fingerprint of an alert: a hex SHA-256 prefix of its kind and resource ids. Times,
/// facts, severity and request ids are left out, so the same problem seen again matches.
pub fn fingerprint(alert: &Alert) -> String {
    let resource = &alert.resource;
    let mut hasher = Sha256::new();
    hasher.update(alert.kind.as_str());
    let fields = [
        ("instance", &resource.instance),
        ("backup_id", &resource.backup_id),
        ("snapshot", &resource.snapshot),
        ("export_id", &resource.export_id),
        ("bucket", &resource.bucket),
        ("key", &resource.key),
    ];
    for (name, value) in fields {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        let value = value.as_deref().unwrap_or("");
        hasher.update(format!("\n{name}:{}:", value.len()));
        hasher.update(value);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Returns the window bucket that `at` falls in.
pub fn window_bucket(at: DateTime<Utc>, window: Duration) -> i64 {
    let window_seconds = window.as_secs().max(1) as i64;
    at.timestamp().div_euclid(window_seconds)
}

/// Returns the marker key for a fingerprint in a bucket.
pub fn marker_key(bucket: i64, fingerprint: &str) -> String {
    format!("{MARKER_PREFIX}{bucket}/{fingerprint}")
}

#[derive(Debug, Serialize, Deserialize)]
struct MarkerBody {
    sent_at: DateTime<Utc>,
    kind: String,
    /// When the claimant will have delivered or given up. Markers written before this field
    /// existed have none and count as delivered.
    #[serde(default)]
    claimed_until: Option<DateTime<Utc>>,
}

/// Returns the key of the acknowledgement written once the claimed message is delivered.
pub fn sent_key(marker_key: &str) -> String {
    format!("{marker_key}.sent")
}

/// Returns true while the claim at `key` is in force: delivered, or its sender may still be delivering.
async fn claim_stands(
    markers: &dyn MarkerStore,
    key: &str,
    body: &MarkerBody,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    match body.claimed_until {
        None => Ok(true),
        Some(until) if now <= until => Ok(true),
        Some(_) => Ok(markers.read_marker(&sent_key(key)).await?.is_some()),
    }
}

/// The deduplication decision for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupDecision {
    /// Send it; the marker at this key now claims it and is deleted again if delivery fails.
    Send { marker_key: String },
    /// Sent within the window already, by this or another invocation.
    Duplicate,
}

/// Decides whether `alert` is sent, claiming the current bucket's marker when it is.
///
/// Errors come from the marker store; the caller decides whether to send anyway.
/// NOTE: two invocations on either side of a bucket boundary, within the time it takes one
/// to write its marker, can both send: the later one may read the previous bucket before the
/// earlier one's marker exists.
pub async fn claim(
    markers: &dyn MarkerStore,
    alert: &Alert,
    now: DateTime<Utc>,
    window: Duration,
    claimed_until: DateTime<Utc>,
) -> Result<DedupDecision, StorageError> {
    let fingerprint = fingerprint(alert);
    let bucket = window_bucket(now, window);

    let previous_key = marker_key(bucket - 1, &fingerprint);
    if let Some(body) = markers.read_marker(&previous_key).await? {
        // An unreadable marker counts as absent: a duplicate message beats a lost one.
        if let Ok(previous) = serde_json::from_slice::<MarkerBody>(&body) {
            let age = now.signed_duration_since(previous.sent_at);
            let recent =
                age.to_std().is_ok_and(|age| age < window) || age < chrono::TimeDelta::zero();
            if recent && claim_stands(markers, &previous_key, &previous, now).await? {
                return Ok(DedupDecision::Duplicate);
            }
        }
    }

    let key = marker_key(bucket, &fingerprint);
    let body = serde_json::to_vec(&MarkerBody {
        sent_at: now,
        kind: alert.kind.as_str().to_string(),
        claimed_until: Some(claimed_until),
    })
    .unwrap_or_default();
    if markers.create_marker(&key, body.clone().into()).await? {
        return Ok(DedupDecision::Send { marker_key: key });
    }
    let Some(existing) = markers.read_marker(&key).await? else {
        // Released between our put and our read: its sender failed and gave it back.
        return retry_claim(markers, key, body).await;
    };
    match serde_json::from_slice::<MarkerBody>(&existing) {
        Ok(existing) if claim_stands(markers, &key, &existing, now).await? => {
            Ok(DedupDecision::Duplicate)
        }
        Ok(_) => {
            tracing::warn!(marker = %key, "taking over the claim of a sender that never delivered");
            markers.delete_marker(&key).await?;
            retry_claim(markers, key, body).await
        }
        Err(_) => Ok(DedupDecision::Duplicate),
    }
}

/// Claims `key` once more after its previous claim went away.
async fn retry_claim(
    markers: &dyn MarkerStore,
    key: String,
    body: Vec<u8>,
) -> Result<DedupDecision, StorageError> {
    if markers.create_marker(&key, body.into()).await? {
        Ok(DedupDecision::Send { marker_key: key })
    } else {
        Ok(DedupDecision::Duplicate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::{AlertKind, Severity};

    fn alert_at(at: &str) -> Alert {
        Alert::new(
            AlertKind::BackupStale,
            Severity::Warning,
            "validate",
            "req-1",
            at.parse().unwrap(),
        )
        .instance("rm-1")
    }

    #[test]
    fn fingerprint_ignores_time_facts_and_request() {
        let first = alert_at("2024-05-01T00:00:00Z");
        let mut second =
            alert_at("2024-05-02T00:00:00Z").fact(crate::alert::model::FactName::BackupAge, "30 h");
        second.request_id = "req-2".into();
        second.severity = Severity::Critical;
        assert_eq!(fingerprint(&first), fingerprint(&second));
        assert_eq!(fingerprint(&first).len(), 32);
    }

    #[test]
    fn fingerprint_separates_kinds_and_resources() {
        let base = alert_at("2024-05-01T00:00:00Z");
        let mut other_kind = base.clone();
        other_kind.kind = AlertKind::BackupMissing;
        let other_instance = base.clone().instance("rm-2");
        assert_ne!(fingerprint(&base), fingerprint(&other_kind));
        assert_ne!(fingerprint(&base), fingerprint(&other_instance));

        let split_one = base.clone().object("ab", "c");
        let split_two = base.clone().object("a", "bc");
        assert_ne!(fingerprint(&split_one), fingerprint(&split_two));
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn a_live_claim_suppresses_a_second_sender() {
        let markers = crate::storage::memory::MemoryStore::new("state");
        let alert = alert_at("2024-05-01T00:00:00Z");
        let now = at("2024-05-01T00:00:00Z");
        let until = at("2024-05-01T00:15:00Z");
        let first = claim(&markers, &alert, now, HOUR, until).await.unwrap();
        assert!(matches!(first, DedupDecision::Send { .. }));
        let second = claim(&markers, &alert, at("2024-05-01T00:10:00Z"), HOUR, until)
            .await
            .unwrap();
        assert_eq!(second, DedupDecision::Duplicate);
    }

    #[tokio::test]
    async fn an_abandoned_claim_is_taken_over_once_its_time_has_passed() {
        let markers = crate::storage::memory::MemoryStore::new("state");
        let alert = alert_at("2024-05-01T00:00:00Z");
        let until = at("2024-05-01T00:15:00Z");
        let first = claim(&markers, &alert, at("2024-05-01T00:00:00Z"), HOUR, until)
            .await
            .unwrap();
        let DedupDecision::Send { marker_key } = first else {
            panic!("the first sender must win: {first:?}");
        };
        // The sender died without writing `.sent`.
        let later = at("2024-05-01T00:20:00Z");
        let next = claim(&markers, &alert, later, HOUR, at("2024-05-01T00:35:00Z"))
            .await
            .unwrap();
        assert_eq!(next, DedupDecision::Send { marker_key });
        let third = claim(&markers, &alert, later, HOUR, at("2024-05-01T00:35:00Z"))
            .await
            .unwrap();
        assert_eq!(third, DedupDecision::Duplicate, "the new claim stands");
    }

    #[tokio::test]
    async fn a_delivered_claim_suppresses_for_the_whole_window() {
        let markers = crate::storage::memory::MemoryStore::new("state");
        let alert = alert_at("2024-05-01T00:00:00Z");
        let until = at("2024-05-01T00:15:00Z");
        let first = claim(&markers, &alert, at("2024-05-01T00:00:00Z"), HOUR, until)
            .await
            .unwrap();
        let DedupDecision::Send { marker_key } = first else {
            panic!("the first sender must win: {first:?}");
        };
        assert!(
            markers
                .create_marker(&sent_key(&marker_key), bytes::Bytes::new())
                .await
                .unwrap()
        );
        let later = at("2024-05-01T00:50:00Z");
        let next = claim(&markers, &alert, later, HOUR, at("2024-05-01T01:05:00Z"))
            .await
            .unwrap();
        assert_eq!(next, DedupDecision::Duplicate);
    }

    #[test]
    fn window_bucket_counts_whole_windows_since_the_epoch() {
        let six_hours = Duration::from_secs(6 * 3600);
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(window_bucket(at("1970-01-01T05:59:59Z"), six_hours), 0);
        assert_eq!(window_bucket(at("1970-01-01T06:00:00Z"), six_hours), 1);
        assert_eq!(marker_key(7, "abc"), "alerts/dedup/7/abc");
    }
}
