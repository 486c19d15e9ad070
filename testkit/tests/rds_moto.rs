//! The `aws-sdk-rds` adapter against moto on 127.0.0.1: request shapes as the real SDK sends them.
//!
//! NOTE: moto 5.2.5 ignores `MaxRecords` for `DescribeDBSnapshots` and returns one page, so the
//! page loop is proven by the scripted fake in `rds_export_start.rs`, not here.

mod rds_support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
use backup_bridge::aws::rds::{
    ExportFilter, ExportService, SnapshotCatalog, SnapshotKind, Source, SourceKind, StartExport,
};
use rds_support::rds_client;

const MOTO_SERVER: &str = "/work/main/.venv/bin/moto_server";

/// A moto server started for one test; it is killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"));
    let child = Command::new(MOTO_SERVER)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("{MOTO_SERVER} did not start: {error}"));
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };

    // Wait until moto accepts connections; each attempt is a connect, not a timed sleep guess.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("moto did not listen on port {port}");
}

fn sdk_client(endpoint: &str) -> aws_sdk_rds::Client {
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_rds::Client::from_conf(config)
}

async fn create_instance_with_snapshots(sdk: &aws_sdk_rds::Client, instance: &str, count: usize) {
    let created = sdk
        .create_db_instance()
        .db_instance_identifier(instance)
        .db_instance_class("db.t3.micro")
        .engine("mysql")
        .master_username("admin")
        .master_user_password("not-a-secret-1")
        .allocated_storage(20)
        .storage_encrypted(true)
        .send()
        .await;
    if let Err(error) = created {
        panic!(
            "moto rejected CreateDBInstance: {}",
            aws_sdk_rds::error::DisplayErrorContext(error)
        );
    }
    for i in 0..count {
        let snapshot = sdk
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(format!("{instance}-manual-{i:02}"))
            .send()
            .await;
        if let Err(error) = snapshot {
            panic!(
                "moto rejected CreateDBSnapshot: {}",
                aws_sdk_rds::error::DisplayErrorContext(error)
            );
        }
    }
}

#[tokio::test]
async fn adapter_lists_moto_snapshots() {
    let moto = start_moto().await;
    let sdk = sdk_client(&moto.endpoint);
    create_instance_with_snapshots(&sdk, "prod-db", 23).await;
    create_instance_with_snapshots(&sdk, "other-db", 2).await;
    let client = rds_client(&moto.endpoint);

    let snapshots = client
        .list_snapshots(&Source::Instance("prod-db".into()))
        .await;
    let snapshots = snapshots.unwrap_or_else(|error| panic!("listing failed: {error}"));

    let manual: Vec<_> = snapshots
        .iter()
        .filter(|s| s.kind == SnapshotKind::Manual)
        .collect();
    assert_eq!(manual.len(), 23);
    assert!(
        snapshots
            .iter()
            .all(|s| s.source == Source::Instance("prod-db".into()))
    );
    assert!(
        manual
            .iter()
            .all(|s| s.arn.starts_with("arn:aws:rds:us-east-1:"))
    );
    assert!(manual.iter().all(|s| s.created.is_some()));
    assert!(
        manual.iter().all(|s| s.is_available()),
        "moto snapshots are available at once"
    );
}

#[tokio::test]
async fn adapter_finds_and_misses_named_snapshots() {
    let moto = start_moto().await;
    let sdk = sdk_client(&moto.endpoint);
    create_instance_with_snapshots(&sdk, "prod-db", 1).await;
    let client = rds_client(&moto.endpoint);

    let found = client
        .find_snapshot(SourceKind::Instance, "prod-db-manual-00")
        .await;
    let missing = client
        .find_snapshot(SourceKind::Instance, "no-such-snapshot")
        .await;

    let found = found.unwrap_or_else(|error| panic!("lookup failed: {error}"));
    assert_eq!(found.map(|s| s.id), Some("prod-db-manual-00".to_string()));
    assert_eq!(missing.ok(), Some(None));
}

#[tokio::test]
async fn adapter_starts_and_describes_export_on_moto() {
    let moto = start_moto().await;
    let sdk = sdk_client(&moto.endpoint);
    create_instance_with_snapshots(&sdk, "prod-db", 1).await;
    let client = rds_client(&moto.endpoint);
    let snapshot = client
        .find_snapshot(SourceKind::Instance, "prod-db-manual-00")
        .await;
    let Ok(Some(snapshot)) = snapshot else {
        panic!("snapshot not found: {snapshot:?}");
    };

    let request = StartExport {
        task_id: "bb-prod-db-manual-00-1234abcd".into(),
        source_arn: snapshot.arn.clone(),
        s3_bucket: "exports".into(),
        s3_prefix: "mysql".into(),
        iam_role_arn: "arn:aws:iam::123456789012:role/rds-export".into(),
        kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/1111".into(),
        export_only: vec!["appdb".into()],
    };
    let started = client.start_export(&request).await;
    let started = started.unwrap_or_else(|error| panic!("StartExportTask failed: {error}"));
    let listed = client.describe_exports(&ExportFilter::default()).await;
    let listed = listed.unwrap_or_else(|error| panic!("DescribeExportTasks failed: {error}"));

    assert_eq!(started.id, request.task_id);
    assert_eq!(started.source_arn, snapshot.arn);
    assert_eq!(started.s3_bucket.as_deref(), Some("exports"));
    assert_eq!(started.s3_prefix.as_deref(), Some("mysql"));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, request.task_id);
}
