//! The RDS client against the fake RDS OpenAPI server over real HTTP on 127.0.0.1: signing,
//! paging, lenient parsing of both fixture shapes, retries and permanent errors.

use std::sync::Arc;
use std::time::Duration;

use backup_bridge::aliyun::rds::RDS_API_VERSION;
use backup_bridge::aliyun::signer::{self, SignableRequest};
use backup_bridge::aliyun::{
    AliyunError, Backup, BackupFilters, BackupMethod, BackupStatus, BackupWindow, Endpoint,
    PageSize, RdsClient, RpcClient, RpcConfig,
};
use backup_bridge::retry::RetryPolicy;
use backup_bridge::secret::{AliyunCredentials, Secret};
use chrono::{TimeDelta, TimeZone, Utc};
use testkit::fake_rds::{ApiError, DownloadUrls, FakeRds, FakeRdsConfig, Fixture};

const NUMERIC_INSTANCE: &str = "rm-bp1numeric00001";
const STRINGS_INSTANCE: &str = "rm-bp1strings00001";

fn credentials(config: &FakeRdsConfig) -> AliyunCredentials {
    AliyunCredentials {
        access_key_id: config.access_key_id.clone(),
        access_key_secret: Secret::new(config.access_key_secret.clone()),
        security_token: config.security_token.clone().map(Secret::new),
    }
}

fn client_with(fake: &FakeRds, credentials: AliyunCredentials) -> RdsClient {
    let config = RpcConfig {
        endpoint: Endpoint::parse(&fake.endpoint(), true).unwrap(),
        version: RDS_API_VERSION.to_string(),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        timeout: Duration::from_secs(10),
    };
    RdsClient::new(RpcClient::new(credentials, config).unwrap())
}

fn client(fake: &FakeRds) -> RdsClient {
    client_with(fake, credentials(fake.config()))
}

/// Covers every backup of both fixtures (May and June 2024).
fn fixture_window() -> BackupWindow {
    BackupWindow::new(
        Utc.with_ymd_and_hms(2024, 4, 30, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap(),
    )
    .unwrap()
}

async fn list(
    fake: &FakeRds,
    instance_id: &str,
    filters: &BackupFilters,
) -> Result<Vec<Backup>, AliyunError> {
    client(fake)
        .describe_backups(instance_id, &fixture_window(), filters)
        .await
}

fn expected_ids(fake: &FakeRds, instance_id: &str) -> Vec<String> {
    fake.fixture_backups()
        .into_iter()
        .filter(|backup| backup.instance_id == instance_id)
        .map(|backup| backup.backup_id)
        .collect()
}

#[tokio::test]
async fn lists_every_page_of_numeric_fixture() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let backups = list(&fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();

    let ids: Vec<String> = backups
        .iter()
        .map(|backup| backup.backup_id.clone())
        .collect();
    assert_eq!(ids, expected_ids(&fake, NUMERIC_INSTANCE));
    assert_eq!(ids.len(), 35);
    let pages: Vec<String> = fake
        .calls()
        .iter()
        .map(|call| call.params["PageNumber"].clone())
        .collect();
    assert_eq!(pages, vec!["1", "2"]);
    let first = &fake.calls()[0];
    assert_eq!(first.params["PageSize"], "30");
    assert_eq!(first.params["StartTime"], "2024-04-30T00:00Z");
    assert_eq!(first.params["EndTime"], "2024-06-30T00:00Z");
}

#[tokio::test]
async fn all_strings_fixture_parses_like_numeric() {
    let numeric_fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let strings_fake = FakeRds::start(FakeRdsConfig::new(Fixture::AllStrings))
        .await
        .unwrap();
    let numeric = list(&numeric_fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();
    let strings = list(&strings_fake, STRINGS_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();

    assert_eq!(strings.len(), numeric.len());
    for (from_strings, from_numbers) in strings.iter().zip(&numeric) {
        assert_eq!(from_strings.size_bytes, from_numbers.size_bytes);
        assert_eq!(from_strings.status, from_numbers.status);
        assert_eq!(from_strings.method, from_numbers.method);
        assert_eq!(from_strings.start, from_numbers.start);
        assert_eq!(from_strings.end, from_numbers.end);
        assert_eq!(from_strings.consistent_time, from_numbers.consistent_time);
        assert_eq!(from_strings.is_available, from_numbers.is_available);
        assert_eq!(from_strings.encryption, from_numbers.encryption);
        assert_eq!(from_strings.checksum, from_numbers.checksum);
    }
}

#[tokio::test]
async fn fixture_edge_cases_parse_leniently() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::AllStrings))
        .await
        .unwrap();
    let backups = list(&fake, STRINGS_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();

    let newest = &backups[0];
    assert_eq!(newest.size_bytes, 5_618_270_208);
    assert_eq!(
        newest.encryption.as_deref(),
        Some(r#"{"encryptionKey":"0d24****-****-****-****-****e9e7"}"#)
    );
    assert_eq!(newest.host_instance_id.as_deref(), Some("7220001"));
    let failed: Vec<&Backup> = backups
        .iter()
        .filter(|backup| backup.status == BackupStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].download_url, None);
    assert_eq!(failed[0].size_bytes, 0);
    let snapshot: Vec<&Backup> = backups
        .iter()
        .filter(|b| b.method == Some(BackupMethod::Snapshot))
        .collect();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].download_url, None);
    assert_eq!(
        backups
            .iter()
            .filter(|backup| backup.checksum.is_none())
            .count(),
        2
    );
}

#[tokio::test]
async fn filters_reach_the_service() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let by_status = BackupFilters {
        status: Some(BackupStatus::Failed),
        page_size: PageSize::Hundred,
        ..Default::default()
    };
    let failed = list(&fake, NUMERIC_INSTANCE, &by_status).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(fake.calls()[0].params["BackupStatus"], "Failed");
    assert_eq!(fake.calls()[0].params["PageSize"], "100");

    let by_id = BackupFilters {
        backup_id: Some("400000003".into()),
        ..Default::default()
    };
    let one = list(&fake, NUMERIC_INSTANCE, &by_id).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].backup_id, "400000003");
}

#[tokio::test]
async fn download_urls_come_from_the_factory() {
    let mut config = FakeRdsConfig::new(Fixture::Numeric);
    config.download_urls = Some(Arc::new(|backup| DownloadUrls {
        public: format!(
            "http://127.0.0.1:1/bucket/{}/{}",
            backup.backup_id, backup.file_name
        ),
        intranet: format!("http://127.0.0.1:2/bucket/{}", backup.backup_id),
    }));
    let fake = FakeRds::start(config).await.unwrap();
    let backups = list(&fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();

    let newest = &backups[0];
    assert_eq!(
        newest.download_url.as_deref(),
        Some(
            format!(
                "http://127.0.0.1:1/bucket/{}/hins7210001_data_20240604020600_qp.xb",
                newest.backup_id
            )
            .as_str()
        )
    );
    assert_eq!(
        newest.intranet_download_url,
        Some(format!("http://127.0.0.1:2/bucket/{}", newest.backup_id))
    );
    let failed = backups
        .iter()
        .find(|backup| backup.status == BackupStatus::Failed)
        .unwrap();
    assert_eq!(failed.download_url, None);
}

#[tokio::test]
async fn throttling_is_retried_until_success() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    fake.throttle_next(2);
    let filters = BackupFilters {
        page_size: PageSize::Fifty,
        ..Default::default()
    };
    let backups = list(&fake, NUMERIC_INSTANCE, &filters).await.unwrap();

    assert_eq!(backups.len(), 35);
    let codes: Vec<Option<String>> = fake
        .calls()
        .into_iter()
        .map(|call| call.error_code)
        .collect();
    assert_eq!(
        codes,
        vec![
            Some("Throttling.User".into()),
            Some("Throttling.User".into()),
            None
        ]
    );
}

#[tokio::test]
async fn service_unavailable_is_retried() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    fake.fail_next(
        1,
        ApiError::new(
            503,
            "ServiceUnavailable",
            "The request has failed due to a temporary failure.",
        ),
    );
    let backups = list(&fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();
    assert_eq!(backups.len(), 35);
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_max_attempts() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    fake.throttle_next(10);
    let error = list(&fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("Throttling.User"));
    assert!(error.request_id().is_some());
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn wrong_secret_fails_once_without_leaking_it() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let mut wrong = credentials(fake.config());
    wrong.access_key_secret = Secret::new("wrong-secret-value");
    let error = client_with(&fake, wrong)
        .describe_backups(
            NUMERIC_INSTANCE,
            &fixture_window(),
            &BackupFilters::default(),
        )
        .await
        .unwrap_err();

    assert_eq!(error.code(), Some("SignatureDoesNotMatch"));
    assert!(!error.is_retryable());
    assert_eq!(fake.calls().len(), 1);
    let printed = format!("{error} {error:?}");
    assert!(!printed.contains("wrong-secret-value"));
}

#[tokio::test]
async fn unknown_access_key_is_permanent() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let mut unknown = credentials(fake.config());
    unknown.access_key_id = "LTAI-unknown".into();
    let error = client_with(&fake, unknown)
        .describe_backups(
            NUMERIC_INSTANCE,
            &fixture_window(),
            &BackupFilters::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidAccessKeyId.NotFound"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn unknown_instance_is_permanent_with_request_id() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let error = list(&fake, "rm-doesnotexist", &BackupFilters::default())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidDBInstanceId.NotFound"));
    assert_eq!(error.request_id(), Some("FAKE-RDS-00000001"));
    assert!(error.to_string().contains("InvalidDBInstanceId.NotFound"));
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn sts_token_is_signed_and_checked() {
    let mut config = FakeRdsConfig::new(Fixture::Numeric);
    config.security_token = Some("sts-token-value".into());
    let fake = FakeRds::start(config).await.unwrap();
    let backups = list(&fake, NUMERIC_INSTANCE, &BackupFilters::default())
        .await
        .unwrap();
    assert_eq!(backups.len(), 35);

    let mut without_token = credentials(fake.config());
    without_token.security_token = None;
    let error = client_with(&fake, without_token)
        .describe_backups(
            NUMERIC_INSTANCE,
            &fixture_window(),
            &BackupFilters::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("InvalidSecurityToken.Mismatch"));
}

/// Sends one DescribeBackups request signed with a chosen date and nonce; returns the status
/// and the error code.
async fn send_signed(fake: &FakeRds, date: &str, nonce: &str) -> (u16, Option<String>) {
    let config = fake.config();
    let payload_hash = signer::hash_payload(b"");
    let headers: Vec<(String, String)> = vec![
        ("host".into(), fake.authority()),
        ("x-acs-action".into(), "DescribeBackups".into()),
        ("x-acs-version".into(), RDS_API_VERSION.into()),
        ("x-acs-date".into(), date.into()),
        ("x-acs-signature-nonce".into(), nonce.into()),
        ("x-acs-content-sha256".into(), payload_hash.clone()),
    ];
    let query = vec![("DBInstanceId".to_string(), NUMERIC_INSTANCE.to_string())];
    let request = SignableRequest {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        payload_hash: &payload_hash,
    };
    let authorization =
        signer::authorization(&config.access_key_id, &config.access_key_secret, &request);

    let mut builder = reqwest::Client::new()
        .post(format!(
            "{}/?DBInstanceId={NUMERIC_INSTANCE}",
            fake.endpoint()
        ))
        .header("authorization", authorization);
    for (name, value) in &headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body.get("Code")
            .and_then(|code| code.as_str())
            .map(str::to_string),
    )
}

#[tokio::test]
async fn date_older_than_fifteen_minutes_is_expired() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let stale = signer::format_date(Utc::now() - TimeDelta::minutes(16));
    let (status, code) = send_signed(&fake, &stale, "nonce-stale").await;
    assert_eq!(status, 400);
    assert_eq!(code.as_deref(), Some("InvalidTimeStamp.Expired"));

    let recent = signer::format_date(Utc::now() - TimeDelta::minutes(14));
    let (status, code) = send_signed(&fake, &recent, "nonce-recent").await;
    assert_eq!(status, 200);
    assert_eq!(code, None);
}

#[tokio::test]
async fn reused_nonce_is_rejected() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let now = signer::format_date(Utc::now());
    let (status, _) = send_signed(&fake, &now, "nonce-once").await;
    assert_eq!(status, 200);
    let (status, code) = send_signed(&fake, &now, "nonce-once").await;
    assert_eq!(status, 400);
    assert_eq!(code.as_deref(), Some("SignatureNonceUsed"));
}

#[tokio::test]
async fn window_filters_backups_by_start_time() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let window = BackupWindow::new(
        Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 6, 3, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let backups = client(&fake)
        .describe_backups(NUMERIC_INSTANCE, &window, &BackupFilters::default())
        .await
        .unwrap();
    let days: Vec<String> = backups
        .iter()
        .map(|backup| backup.start.format("%m-%d").to_string())
        .collect();
    assert_eq!(days, vec!["06-02", "06-01"]);
}
