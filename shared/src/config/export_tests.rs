//! Unit tests of the export function configurations.

use super::*;
use crate::config::test_env::lookup;
use crate::secret::Secret;

const START: [(&str, &str); 4] = [
    (RDS_SOURCES, "instance:prod-db, cluster:aurora-1"),
    (EXPORT_BUCKET, "exports"),
    (
        EXPORT_IAM_ROLE_ARN,
        "arn:aws:iam::123456789012:role/rds-export",
    ),
    (
        EXPORT_KMS_KEY_ID,
        "arn:aws:kms:us-east-1:123456789012:key/abc",
    ),
];

const POLL: [(&str, &str); 4] = [
    (EXPORT_BUCKET, "exports"),
    ("OSS_ENDPOINT", "oss-cn-hangzhou.aliyuncs.com"),
    ("OSS_REGION", "cn-hangzhou"),
    ("OSS_BUCKET", "backups"),
];

fn credentials() -> AliyunCredentials {
    AliyunCredentials {
        access_key_id: "LTAI-test".into(),
        access_key_secret: Secret::new("export-config-secret"),
        security_token: None,
    }
}

fn with(
    base: &[(&'static str, &'static str)],
    extra: (&'static str, &'static str),
) -> Vec<(&'static str, &'static str)> {
    let mut pairs = base.to_vec();
    pairs.retain(|(name, _)| *name != extra.0);
    pairs.push(extra);
    pairs
}

#[test]
fn start_defaults_apply_when_only_required_variables_are_set() {
    let config = ExportStartFunctionConfig::from_env(&lookup(&START)).unwrap();
    let job = config.job;
    assert_eq!(
        job.sources,
        vec![
            Source::Instance("prod-db".into()),
            Source::Cluster("aurora-1".into())
        ]
    );
    assert_eq!(job.s3_prefix, "mysql");
    assert_eq!(job.id_prefix, "bb");
    assert_eq!(job.policy.max_age, Duration::hours(26));
    assert!(!job.policy.require_encryption);
    assert_eq!(job.max_concurrent_exports, 5);
    assert!(job.export_only.is_empty());
    assert!(config.rds.endpoint_url.is_none());
}

#[test]
fn start_reads_optional_settings() {
    let mut pairs = START.to_vec();
    pairs.extend([
        (EXPORT_ONLY, "shop, shop.orders ,"),
        (EXPORT_ID_PREFIX, "Prod_Backup"),
        (SNAPSHOT_MAX_AGE_HOURS, "30"),
        (SNAPSHOT_REQUIRE_ENCRYPTION, "true"),
        (EXPORT_MAX_CONCURRENT, "3"),
        (AWS_ENDPOINT_URL_RDS, "http://127.0.0.1:4566"),
    ]);
    let config = ExportStartFunctionConfig::from_env(&lookup(&pairs)).unwrap();
    assert_eq!(config.job.export_only, vec!["shop", "shop.orders"]);
    assert_eq!(config.job.id_prefix, "prod-backup");
    assert_eq!(config.job.policy.max_age, Duration::hours(30));
    assert!(config.job.policy.require_encryption);
    assert_eq!(config.job.max_concurrent_exports, 3);
    assert_eq!(
        config.rds.endpoint_url.as_deref(),
        Some("http://127.0.0.1:4566")
    );
}

#[test]
fn export_prefix_loses_its_trailing_slash() {
    let pairs = with(&START, (EXPORT_PREFIX, "mysql/"));
    let config = ExportStartFunctionConfig::from_env(&lookup(&pairs)).unwrap();
    assert_eq!(config.job.s3_prefix, "mysql");
}

#[test]
fn export_prefix_with_colon_is_rejected() {
    let pairs = with(&START, (EXPORT_PREFIX, "mysql:daily"));
    let error = ExportStartFunctionConfig::from_env(&lookup(&pairs)).unwrap_err();
    assert!(
        error.to_string().contains("EXPORT_PREFIX=mysql:daily"),
        "{error}"
    );
}

#[test]
fn missing_kms_key_is_named() {
    let error = ExportStartFunctionConfig::from_env(&lookup(&START[..3])).unwrap_err();
    assert!(error.to_string().contains(EXPORT_KMS_KEY_ID), "{error}");
}

#[test]
fn role_that_is_not_an_arn_is_rejected() {
    let pairs = with(&START, (EXPORT_IAM_ROLE_ARN, "rds-export"));
    let error = ExportStartFunctionConfig::from_env(&lookup(&pairs)).unwrap_err();
    assert!(
        error.to_string().contains("EXPORT_IAM_ROLE_ARN=rds-export"),
        "{error}"
    );
}

#[test]
fn more_than_five_concurrent_exports_is_rejected() {
    let pairs = with(&START, (EXPORT_MAX_CONCURRENT, "6"));
    let error = ExportStartFunctionConfig::from_env(&lookup(&pairs)).unwrap_err();
    assert!(
        error.to_string().contains("EXPORT_MAX_CONCURRENT=6"),
        "{error}"
    );
}

#[test]
fn sources_accept_bare_ids_and_drop_duplicates() {
    let sources = parse_sources("prod-db,instance:prod-db,CLUSTER:aurora-1").unwrap();
    assert_eq!(
        sources,
        vec![
            Source::Instance("prod-db".into()),
            Source::Cluster("aurora-1".into())
        ]
    );
}

#[test]
fn sources_with_unknown_kind_or_no_id_are_rejected() {
    for list in ["table:orders", "instance:", " , ", "cluster: "] {
        let error = parse_sources(list).unwrap_err();
        assert!(error.to_string().contains("RDS_SOURCES"), "{list}: {error}");
    }
}

#[test]
fn poll_defaults_map_the_export_prefix_to_oss() {
    let config = ExportPollFunctionConfig::from_env(&lookup(&POLL), credentials()).unwrap();
    assert_eq!(config.bucket, "exports");
    assert_eq!(config.job.marker_prefix, "backup-bridge-state/exports");
    assert_eq!(config.job.default_s3_prefix, "mysql");
    assert_eq!(config.job.stuck_after, Duration::hours(24));
    assert_eq!(config.job.id_prefix, "bb");
    assert_eq!(config.sync.source_prefix, "mysql/");
    assert_eq!(config.sync.target_prefix, "iotdb-backup/mysql/");
    assert_eq!(config.sync.source_bucket.as_deref(), Some("exports"));
}

#[test]
fn poll_reads_state_prefix_and_stuck_limit() {
    let mut pairs = POLL.to_vec();
    pairs.extend([(STATE_PREFIX, "state"), (EXPORT_STUCK_AFTER_HOURS, "6")]);
    let config = ExportPollFunctionConfig::from_env(&lookup(&pairs), credentials()).unwrap();
    assert_eq!(config.job.marker_prefix, "state/exports");
    assert_eq!(config.job.stuck_after, Duration::hours(6));
}

#[test]
fn zero_stuck_limit_is_rejected() {
    let pairs = with(&POLL, (EXPORT_STUCK_AFTER_HOURS, "0"));
    let error = ExportPollFunctionConfig::from_env(&lookup(&pairs), credentials()).unwrap_err();
    assert!(
        error.to_string().contains("EXPORT_STUCK_AFTER_HOURS=0"),
        "{error}"
    );
}

#[test]
fn poll_debug_output_leaves_the_secret_out() {
    let config = ExportPollFunctionConfig::from_env(&lookup(&POLL), credentials()).unwrap();
    assert!(!format!("{config:?}").contains("export-config-secret"));
}
