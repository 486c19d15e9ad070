use super::*;
use crate::aliyun::BackupMode;
use chrono::TimeZone;

const INSTANCE: &str = "rm-bp1test";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap()
}

/// Builds a successful physical full backup that ended `hours_ago` before `now()`.
fn full(id: &str, hours_ago: i64, size: u64) -> Backup {
    let end = now() - TimeDelta::hours(hours_ago);
    Backup {
        backup_id: id.to_string(),
        instance_id: INSTANCE.to_string(),
        status: BackupStatus::Success,
        mode: Some(BackupMode::Automated),
        method: Some(BackupMethod::Physical),
        backup_type: Some(BackupType::FullBackup),
        start: end - TimeDelta::minutes(20),
        end: Some(end),
        size_bytes: size,
        download_url: Some(format!(
            "https://rdsbak.oss-cn-hangzhou.aliyuncs.com/{id}_qp.xb"
        )),
        intranet_download_url: Some(format!(
            "https://rdsbak.oss-cn-hangzhou-internal.aliyuncs.com/{id}_qp.xb"
        )),
        checksum: None,
        consistent_time: None,
        host_instance_id: None,
        is_available: Some(true),
        store_status: None,
        engine: Some("MySQL".into()),
        engine_version: Some("8.0".into()),
        encryption: None,
    }
}

fn failed(id: &str, hours_ago: i64) -> Backup {
    Backup {
        status: BackupStatus::Failed,
        end: None,
        size_bytes: 0,
        download_url: None,
        ..full(id, hours_ago, 0)
    }
}

fn verdicts(backups: &[Backup]) -> Vec<Verdict> {
    validate_instance(INSTANCE, backups, now(), &ValidationSettings::default()).verdicts
}

fn ok(id: &str) -> Vec<Verdict> {
    vec![Verdict::Ok {
        backup_id: id.into(),
    }]
}

#[test]
fn table_of_instance_histories() {
    let snapshot = Backup {
        method: Some(BackupMethod::Snapshot),
        download_url: None,
        ..full("3", 2, 1000)
    };
    let incremental = Backup {
        backup_type: Some(BackupType::IncrementalBackup),
        ..full("4", 1, 10)
    };
    let other_instance = Backup {
        instance_id: "rm-other".into(),
        ..full("9", 1, 1000)
    };
    let cases: Vec<(&str, Vec<Backup>, Vec<Verdict>)> = vec![
        (
            "healthy daily backups",
            vec![full("1", 26, 1000), full("2", 2, 990)],
            ok("2"),
        ),
        ("no backups at all", vec![], vec![Verdict::Missing]),
        (
            "only a failed backup",
            vec![failed("5", 3)],
            vec![
                Verdict::Missing,
                Verdict::Failed {
                    backup_id: "5".into(),
                },
            ],
        ),
        (
            "only an incremental backup",
            vec![incremental.clone()],
            vec![Verdict::Missing],
        ),
        (
            "incremental does not hide the full one",
            vec![full("2", 2, 990), incremental],
            ok("2"),
        ),
        (
            "backups of another instance are ignored",
            vec![other_instance],
            vec![Verdict::Missing],
        ),
        (
            "newest full backup is too old",
            vec![full("1", 30, 1000)],
            vec![Verdict::Stale {
                backup_id: "1".into(),
                newest_end: now() - TimeDelta::hours(30),
                age: TimeDelta::hours(30),
                max_age: TimeDelta::hours(26),
            }],
        ),
        (
            "exactly max age is still fresh",
            vec![full("1", 26, 1000)],
            ok("1"),
        ),
        (
            "snapshot backup has no url",
            vec![snapshot],
            vec![Verdict::NotDownloadable {
                backup_id: "3".into(),
            }],
        ),
        (
            "size below half of the previous one",
            vec![full("1", 26, 1000), full("2", 2, 499)],
            vec![Verdict::SizeDrop {
                backup_id: "2".into(),
                current: 499,
                previous: 1000,
                fraction: 0.5,
            }],
        ),
        (
            "size exactly half is accepted",
            vec![full("1", 26, 1000), full("2", 2, 500)],
            ok("2"),
        ),
        (
            "zero size",
            vec![full("1", 26, 1000), full("2", 2, 0)],
            vec![Verdict::ZeroSize {
                backup_id: "2".into(),
            }],
        ),
        (
            "failed backup next to a good one",
            vec![full("1", 26, 1000), failed("5", 3), full("2", 2, 990)],
            vec![Verdict::Failed {
                backup_id: "5".into(),
            }],
        ),
    ];
    for (name, backups, expected) in cases {
        assert_eq!(verdicts(&backups), expected, "case: {name}");
    }
}

#[test]
fn snapshot_size_is_not_compared_with_physical() {
    let snapshot = Backup {
        method: Some(BackupMethod::Snapshot),
        download_url: None,
        ..full("3", 2, 10)
    };
    assert_eq!(
        verdicts(&[full("1", 26, 1000), snapshot]),
        vec![Verdict::NotDownloadable {
            backup_id: "3".into()
        }]
    );
}

#[test]
fn newest_is_chosen_by_end_time_not_list_order() {
    let report = verdicts(&[full("2", 2, 990), full("1", 26, 1000)]);
    assert_eq!(report, ok("2"));
}

#[test]
fn intranet_network_needs_the_intranet_url() {
    let backup = Backup {
        intranet_download_url: None,
        ..full("1", 2, 1000)
    };
    let settings = ValidationSettings {
        network: DownloadNetwork::Intranet,
        ..ValidationSettings::default()
    };
    let report = validate_instance(INSTANCE, std::slice::from_ref(&backup), now(), &settings);
    assert_eq!(
        report.verdicts,
        vec![Verdict::NotDownloadable {
            backup_id: "1".into()
        }]
    );
    assert_eq!(verdicts(&[backup]), ok("1"));
}

#[test]
fn several_problems_are_all_reported() {
    let newest = Backup {
        download_url: None,
        ..full("2", 40, 0)
    };
    let report = verdicts(&[newest, failed("5", 30)]);
    assert_eq!(report.len(), 4);
    assert!(matches!(report[0], Verdict::Stale { .. }));
    assert_eq!(
        report[1],
        Verdict::NotDownloadable {
            backup_id: "2".into()
        }
    );
    assert_eq!(
        report[2],
        Verdict::ZeroSize {
            backup_id: "2".into()
        }
    );
    assert_eq!(
        report[3],
        Verdict::Failed {
            backup_id: "5".into()
        }
    );
}

#[test]
fn ok_is_the_only_verdict_without_a_problem() {
    assert!(
        !Verdict::Ok {
            backup_id: "1".into()
        }
        .is_problem()
    );
    assert!(Verdict::Missing.is_problem());
}
