//! Downloads of RDS backup links with `HttpSource`: the fake RDS API hands out presigned GET
//! URLs of the fake OSS, and the source streams them with Range resume, an expiry check, a host
//! allowlist and same-host redirects only. Every host name resolves to 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use backup_bridge::aliyun::rds::RDS_API_VERSION;
use backup_bridge::aliyun::{
    BackupFilters, BackupWindow, Endpoint, RdsClient, RpcClient, RpcConfig,
};
use backup_bridge::checksum::crc64;
use backup_bridge::retry::RetryPolicy;
use backup_bridge::secret::{AliyunCredentials, Secret};
use backup_bridge::storage::http::{
    HttpSource, HttpSourceConfig, is_expired_url, presigned_expiry,
};
use backup_bridge::storage::{ByteRange, ByteStream, ErrorKind, ObjectSource, StorageError};
use backup_bridge::validate::backup::{ValidationSettings, Verdict, validate_instance};
use chrono::{TimeDelta, TimeZone, Utc};
use futures::StreamExt;
use testkit::fake_oss::{FakeOss, FakeOssConfig};
use testkit::fake_rds::{DownloadUrls, FakeRds, FakeRdsConfig, Fixture};

const BUCKET: &str = "rdsbak-hz-v3";
const INSTANCE: &str = "rm-bp1numeric00001";

/// Resolves every host name to one loopback address.
struct Loopback(SocketAddr);

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let address = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs) })
    }
}

fn source_for(address: SocketAddr) -> HttpSource {
    let config = HttpSourceConfig {
        allow_plain_http: true,
        ..HttpSourceConfig::default()
    };
    let builder = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(Loopback(address)));
    HttpSource::with_client_builder(config, builder).unwrap()
}

fn oss_source(oss: &FakeOss) -> HttpSource {
    source_for(SocketAddr::from(([127, 0, 0, 1], oss.port())))
}

fn rpc_for(rds: &FakeRds) -> RpcClient {
    let credentials = AliyunCredentials {
        access_key_id: rds.config().access_key_id.clone(),
        access_key_secret: Secret::new(rds.config().access_key_secret.clone()),
        security_token: None,
    };
    let config = RpcConfig {
        endpoint: Endpoint::parse(&rds.endpoint(), true).unwrap(),
        version: RDS_API_VERSION.into(),
        retry: RetryPolicy::default(),
        timeout: Duration::from_secs(10),
    };
    RpcClient::new(credentials, config).unwrap()
}

/// Returns deterministic bytes that are not a repeating pattern of a power-of-two length.
fn backup_bytes(length: usize) -> Vec<u8> {
    (0..length)
        .map(|i| ((i * 7919 + i / 251) % 253) as u8)
        .collect()
}

async fn collect(mut stream: ByteStream) -> Result<Vec<u8>, StorageError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

async fn oss_with_object(bytes: &[u8]) -> (FakeOss, String) {
    let oss = FakeOss::start(FakeOssConfig::with_buckets(&[BUCKET]))
        .await
        .unwrap();
    oss.put_object_direct(BUCKET, "custins1/backup_qp.xb", bytes, &[])
        .unwrap();
    let url = oss.presign_get(
        BUCKET,
        "custins1/backup_qp.xb",
        Utc::now() + TimeDelta::hours(1),
    );
    (oss, url)
}

#[tokio::test]
async fn listed_backup_downloads_with_matching_crc64() {
    let oss = FakeOss::start(FakeOssConfig::with_buckets(&[BUCKET]))
        .await
        .unwrap();
    let oss = Arc::new(oss);
    let mut config = FakeRdsConfig::new(Fixture::Numeric);
    let factory_oss = oss.clone();
    config.download_urls = Some(Arc::new(move |backup| {
        let key = format!("custins/{}/{}", backup.backup_id, backup.file_name);
        let url = factory_oss.presign_get(BUCKET, &key, Utc::now() + TimeDelta::hours(1));
        DownloadUrls {
            public: url.clone(),
            intranet: url,
        }
    }));
    let rds = FakeRds::start(config).await.unwrap();
    let newest = rds
        .fixture_backups()
        .into_iter()
        .find(|backup| backup.instance_id == INSTANCE)
        .unwrap();
    let bytes = backup_bytes(3 * 1024 * 1024 + 17);
    oss.put_object_direct(
        BUCKET,
        &format!("custins/{}/{}", newest.backup_id, newest.file_name),
        &bytes,
        &[],
    )
    .unwrap();

    let rpc = rpc_for(&rds);
    let window = BackupWindow::new(
        Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 6, 5, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let backups = RdsClient::new(rpc)
        .describe_backups(INSTANCE, &window, &BackupFilters::default())
        .await
        .unwrap();
    let now = Utc.with_ymd_and_hms(2024, 6, 4, 12, 0, 0).unwrap();
    let report = validate_instance(INSTANCE, &backups, now, &ValidationSettings::default());
    // The newest backup passes; the fixture's one failed backup in the window is reported.
    assert_eq!(
        report.verdicts,
        vec![Verdict::Failed {
            backup_id: "400000021".into()
        }]
    );
    assert_eq!(backups[0].backup_id, newest.backup_id);

    // A second lookup by id returns a fresh URL for the same object, as a resume needs.
    let rpc_client = RdsClient::new(rpc_for(&rds));
    let found = rpc_client
        .find_backup(INSTANCE, &newest.backup_id, backups[0].start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.backup_id, newest.backup_id);
    let expiry = presigned_expiry(found.download_url.as_deref().unwrap()).unwrap();
    assert!(expiry > Utc::now());

    let url = backups[0].download_url.clone().unwrap();
    let source = oss_source(&oss);
    let info = source.head(&url).await.unwrap().unwrap();
    assert_eq!(info.size, bytes.len() as u64);
    assert_eq!(info.crc64, Some(crc64(&bytes)));
    let (info, body) = source.get(&url, None).await.unwrap();
    let downloaded = collect(body).await.unwrap();
    assert_eq!(downloaded.len(), bytes.len());
    assert_eq!(crc64(&downloaded), crc64(&bytes));
    assert_eq!(info.crc64, Some(crc64(&bytes)));
}

#[tokio::test]
async fn cut_download_fails_and_resumes_with_range() {
    let bytes = backup_bytes(2 * 1024 * 1024);
    let (oss, url) = oss_with_object(&bytes).await;
    let source = oss_source(&oss);
    oss.cut_downloads_after(Some(700_000));

    let (_, body) = source.get(&url, None).await.unwrap();
    let mut received = Vec::new();
    let mut body = body;
    let mut failure = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => received.extend_from_slice(&chunk),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let failure = failure.expect("a cut body must end in an error, not a short success");
    assert_eq!(failure.kind, ErrorKind::Transient);
    assert!(received.len() <= 700_000);

    oss.cut_downloads_after(None);
    let rest = ByteRange {
        first: received.len() as u64,
        last: bytes.len() as u64 - 1,
    };
    let (info, body) = source.get(&url, Some(rest)).await.unwrap();
    assert_eq!(info.size, bytes.len() as u64);
    received.extend(collect(body).await.unwrap());
    assert_eq!(received, bytes);
}

#[tokio::test]
async fn range_past_end_is_shortened() {
    let bytes = backup_bytes(1000);
    let (oss, url) = oss_with_object(&bytes).await;
    let (_, body) = oss_source(&oss)
        .get(
            &url,
            Some(ByteRange {
                first: 900,
                last: 5000,
            }),
        )
        .await
        .unwrap();
    assert_eq!(collect(body).await.unwrap(), bytes[900..]);
}

#[tokio::test]
async fn expired_url_is_an_error_not_data() {
    let oss = FakeOss::start(FakeOssConfig::with_buckets(&[BUCKET]))
        .await
        .unwrap();
    oss.put_object_direct(BUCKET, "custins1/backup_qp.xb", b"backup", &[])
        .unwrap();
    let url = oss.presign_get(
        BUCKET,
        "custins1/backup_qp.xb",
        Utc::now() - TimeDelta::minutes(1),
    );

    let error = match oss_source(&oss).get(&url, None).await {
        Ok(_) => panic!("an expired url returned a body"),
        Err(error) => error,
    };
    assert!(is_expired_url(&error), "not recognised as expired: {error}");
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(!error.to_string().contains("Signature="));
}

#[tokio::test]
async fn missing_object_head_is_none() {
    let (oss, _) = oss_with_object(b"x").await;
    let url = oss.presign_get(
        BUCKET,
        "custins1/absent_qp.xb",
        Utc::now() + TimeDelta::hours(1),
    );
    assert_eq!(oss_source(&oss).head(&url).await.unwrap(), None);
}

#[tokio::test]
async fn empty_object_head_reports_zero_size() {
    let (oss, url) = oss_with_object(b"").await;
    let info = oss_source(&oss).head(&url).await.unwrap().unwrap();
    assert_eq!(info.size, 0);
}

#[tokio::test]
async fn host_outside_allowlist_is_never_contacted() {
    let (oss, _) = oss_with_object(b"x").await;
    let url = format!("http://127.0.0.1:{}/custins1/backup_qp.xb", oss.port());
    let error = match oss_source(&oss).get(&url, None).await {
        Ok(_) => panic!("a host outside the allowlist was downloaded"),
        Err(error) => error,
    };
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(oss.request_log().is_empty());
}

/// Starts a server with `/data`, a same-host redirect `/moved` and a cross-host redirect `/away`.
async fn redirecting_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let port = address.port();
    let app = Router::new()
        .route("/data", get(|| async { "backup-bytes" }))
        .route(
            "/moved",
            get(move || async move {
                let target = format!("http://b.oss-cn-hangzhou.aliyuncs.com:{port}/data");
                (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
            }),
        )
        .route(
            "/away",
            get(move || async move {
                let target = format!("http://other.oss-cn-beijing.aliyuncs.com:{port}/data");
                (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

#[tokio::test]
async fn redirect_to_same_host_is_followed() {
    let address = redirecting_server().await;
    let url = format!(
        "http://b.oss-cn-hangzhou.aliyuncs.com:{}/moved",
        address.port()
    );
    let (_, body) = source_for(address).get(&url, None).await.unwrap();
    assert_eq!(collect(body).await.unwrap(), b"backup-bytes");
}

#[tokio::test]
async fn redirect_to_another_host_is_rejected() {
    let address = redirecting_server().await;
    let url = format!(
        "http://b.oss-cn-hangzhou.aliyuncs.com:{}/away",
        address.port()
    );
    let error = match source_for(address).get(&url, None).await {
        Ok(_) => panic!("a redirect to another host was followed"),
        Err(error) => error,
    };
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(
        error.message.contains("redirect to another host rejected"),
        "{error}"
    );
}
