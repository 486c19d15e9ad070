//! Snapshot verdicts: whether the newest `available` snapshot of a source is fit to export.
//!
//! Pure functions over the snapshot list, so the rules are tested without RDS.

use chrono::{DateTime, Duration, Utc};

use crate::aws::rds::{Snapshot, Source};

/// The default maximum age of the newest snapshot: a daily backup plus two hours of slack.
pub const DEFAULT_MAX_AGE: Duration = Duration::hours(26);

/// The rules a snapshot must satisfy to be exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// The newest available snapshot may be at most this old.
    pub max_age: Duration,
    /// When true, an unencrypted snapshot is rejected.
    pub require_encryption: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_MAX_AGE,
            require_encryption: false,
        }
    }
}

/// The verdict on one source's snapshots; everything except `Valid` is a finding to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotVerdict {
    /// The newest available snapshot passes every rule.
    Valid(Snapshot),
    /// The source has no snapshot at all.
    NoSnapshot { source: Source },
    /// The source has snapshots, but none is `available`; `newest` is the most recent one.
    NotAvailable { source: Source, newest: Snapshot },
    /// The newest available snapshot is older than the maximum age.
    Stale {
        snapshot: Snapshot,
        age: Duration,
        max_age: Duration,
    },
    /// Encryption is required and the newest available snapshot is not encrypted.
    NotEncrypted { snapshot: Snapshot },
}

impl SnapshotVerdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, SnapshotVerdict::Valid(_))
    }

    /// Returns a short stable name for reports and logs, e.g. `stale`.
    pub fn name(&self) -> &'static str {
        match self {
            SnapshotVerdict::Valid(_) => "valid",
            SnapshotVerdict::NoSnapshot { .. } => "no_snapshot",
            SnapshotVerdict::NotAvailable { .. } => "not_available",
            SnapshotVerdict::Stale { .. } => "stale",
            SnapshotVerdict::NotEncrypted { .. } => "not_encrypted",
        }
    }
}

/// Judges the snapshots of `source` at time `now`. Snapshots of other sources in the list are
/// ignored. Among available snapshots the one with the latest creation time is judged; a
/// snapshot without a creation time counts as the oldest.
pub fn judge(
    source: &Source,
    snapshots: &[Snapshot],
    policy: &SnapshotPolicy,
    now: DateTime<Utc>,
) -> SnapshotVerdict {
    let own: Vec<&Snapshot> = snapshots.iter().filter(|s| &s.source == source).collect();

    let newest_available = own
        .iter()
        .filter(|s| s.is_available())
        .max_by_key(|s| s.created);
    let Some(snapshot) = newest_available else {
        return match own.iter().max_by_key(|s| s.created) {
            Some(newest) => SnapshotVerdict::NotAvailable {
                source: source.clone(),
                newest: (*newest).clone(),
            },
            None => SnapshotVerdict::NoSnapshot {
                source: source.clone(),
            },
        };
    };
    let snapshot = (*snapshot).clone();

    // An available snapshot without a creation time cannot be shown to be fresh.
    let age = snapshot
        .created
        .map_or(Duration::MAX, |created| now - created);
    if age > policy.max_age {
        return SnapshotVerdict::Stale {
            snapshot,
            age,
            max_age: policy.max_age,
        };
    }
    if policy.require_encryption && !snapshot.encrypted {
        return SnapshotVerdict::NotEncrypted { snapshot };
    }
    SnapshotVerdict::Valid(snapshot)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::aws::rds::SnapshotKind;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 6, 2, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn instance() -> Source {
        Source::Instance("prod-db".into())
    }

    fn snapshot(id: &str, hours_old: i64, status: &str, encrypted: bool) -> Snapshot {
        Snapshot {
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            id: id.into(),
            source: instance(),
            created: Some(now() - Duration::hours(hours_old)),
            status: status.into(),
            encrypted,
            kind: SnapshotKind::Automated,
        }
    }

    struct Case {
        name: &'static str,
        snapshots: Vec<Snapshot>,
        policy: SnapshotPolicy,
        expected: &'static str,
        expected_id: Option<&'static str>,
    }

    #[test]
    fn verdicts_follow_the_rules() {
        let strict = SnapshotPolicy {
            require_encryption: true,
            ..SnapshotPolicy::default()
        };
        let cases = vec![
            Case {
                name: "no snapshots",
                snapshots: vec![],
                policy: SnapshotPolicy::default(),
                expected: "no_snapshot",
                expected_id: None,
            },
            Case {
                name: "newest available is fresh",
                snapshots: vec![
                    snapshot("old", 30, "available", true),
                    snapshot("new", 2, "available", true),
                ],
                policy: SnapshotPolicy::default(),
                expected: "valid",
                expected_id: Some("new"),
            },
            Case {
                name: "a creating snapshot is passed over for the newest available",
                snapshots: vec![
                    snapshot("made", 3, "available", true),
                    snapshot("making", 0, "creating", true),
                ],
                policy: SnapshotPolicy::default(),
                expected: "valid",
                expected_id: Some("made"),
            },
            Case {
                name: "status is compared ignoring case",
                snapshots: vec![snapshot("upper", 1, "Available", true)],
                policy: SnapshotPolicy::default(),
                expected: "valid",
                expected_id: Some("upper"),
            },
            Case {
                name: "none available",
                snapshots: vec![
                    snapshot("a", 5, "failed", true),
                    snapshot("b", 1, "creating", true),
                ],
                policy: SnapshotPolicy::default(),
                expected: "not_available",
                expected_id: Some("b"),
            },
            Case {
                name: "older than 26 hours",
                snapshots: vec![snapshot("stale", 27, "available", true)],
                policy: SnapshotPolicy::default(),
                expected: "stale",
                expected_id: Some("stale"),
            },
            Case {
                name: "exactly 26 hours is still fresh",
                snapshots: vec![snapshot("edge", 26, "available", true)],
                policy: SnapshotPolicy::default(),
                expected: "valid",
                expected_id: Some("edge"),
            },
            Case {
                name: "custom maximum age",
                snapshots: vec![snapshot("s", 3, "available", true)],
                policy: SnapshotPolicy {
                    max_age: Duration::hours(2),
                    require_encryption: false,
                },
                expected: "stale",
                expected_id: Some("s"),
            },
            Case {
                name: "unencrypted when required",
                snapshots: vec![snapshot("plain", 1, "available", false)],
                policy: strict,
                expected: "not_encrypted",
                expected_id: Some("plain"),
            },
            Case {
                name: "unencrypted when not required",
                snapshots: vec![snapshot("plain", 1, "available", false)],
                policy: SnapshotPolicy::default(),
                expected: "valid",
                expected_id: Some("plain"),
            },
        ];

        for case in cases {
            let verdict = judge(&instance(), &case.snapshots, &case.policy, now());
            assert_eq!(verdict.name(), case.expected, "case: {}", case.name);
            let judged_id = match &verdict {
                SnapshotVerdict::Valid(s)
                | SnapshotVerdict::Stale { snapshot: s, .. }
                | SnapshotVerdict::NotEncrypted { snapshot: s } => Some(s.id.as_str()),
                SnapshotVerdict::NotAvailable { newest, .. } => Some(newest.id.as_str()),
                SnapshotVerdict::NoSnapshot { .. } => None,
            };
            assert_eq!(judged_id, case.expected_id, "case: {}", case.name);
        }
    }

    #[test]
    fn stale_verdict_carries_age_and_limit() {
        let verdict = judge(
            &instance(),
            &[snapshot("s", 30, "available", true)],
            &SnapshotPolicy::default(),
            now(),
        );
        let SnapshotVerdict::Stale { age, max_age, .. } = verdict else {
            panic!("expected a stale verdict, got {verdict:?}");
        };
        assert_eq!(age, Duration::hours(30));
        assert_eq!(max_age, DEFAULT_MAX_AGE);
    }

    #[test]
    fn snapshots_of_other_sources_are_ignored() {
        let mut other = snapshot("other", 1, "available", true);
        other.source = Source::Cluster("prod-db".into());
        let verdict = judge(&instance(), &[other], &SnapshotPolicy::default(), now());
        assert_eq!(verdict, SnapshotVerdict::NoSnapshot { source: instance() });
    }
}
