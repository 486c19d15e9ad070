//! Fidelity of the fake RDS OpenAPI server: the official Aliyun Python SDK lists the fixtures'
//! backups from it. The SDK signs and parses on its own, so this proves the fake's signature
//! check and response shapes against Aliyun's code rather than against ours.

use std::path::PathBuf;
use std::process::Output;

use testkit::fake_rds::{FakeRds, FakeRdsConfig, Fixture};

/// Returns the Python of the project's virtualenv, or `BACKUP_BRIDGE_PYTHON` when set.
fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("BACKUP_BRIDGE_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

async fn run_sdk(fake: &FakeRds, instance_id: &str, secret: &str) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/rds_sdk_fidelity.py");
    tokio::process::Command::new(python())
        .arg(script)
        .env("FAKE_RDS_ENDPOINT", fake.authority())
        .env("FAKE_RDS_ACCESS_KEY_ID", &fake.config().access_key_id)
        .env("FAKE_RDS_ACCESS_KEY_SECRET", secret)
        .env("FAKE_RDS_INSTANCE_ID", instance_id)
        .env("FAKE_RDS_START_TIME", "2024-04-30T00:00Z")
        .env("FAKE_RDS_END_TIME", "2024-06-30T00:00Z")
        // Keep the SDK away from every credential source but the keys above, and from proxies.
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .output()
        .await
        .expect("the project's Python runs; create it with `python3 -m venv .venv` and requirements-dev.txt")
}

fn expected_ids(fake: &FakeRds, instance_id: &str) -> Vec<String> {
    fake.fixture_backups()
        .into_iter()
        .filter(|backup| backup.instance_id == instance_id)
        .map(|backup| backup.backup_id)
        .collect()
}

async fn assert_sdk_lists_fixture(fixture: Fixture, instance_id: &str) {
    let fake = FakeRds::start(FakeRdsConfig::new(fixture)).await.unwrap();
    let secret = fake.config().access_key_secret.clone();
    let output = run_sdk(&fake, instance_id, &secret).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sdk script failed: {stderr}");
    let printed: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(printed, expected_ids(&fake, instance_id));
    assert_eq!(printed.len(), 35);
    let pages: Vec<String> = fake
        .calls()
        .iter()
        .map(|call| call.params["PageNumber"].clone())
        .collect();
    assert_eq!(pages, vec!["1", "2"]);
}

#[tokio::test]
async fn official_sdk_lists_numeric_fixture() {
    assert_sdk_lists_fixture(Fixture::Numeric, "rm-bp1numeric00001").await;
}

#[tokio::test]
async fn official_sdk_lists_all_strings_fixture() {
    assert_sdk_lists_fixture(Fixture::AllStrings, "rm-bp1strings00001").await;
}

#[tokio::test]
async fn official_sdk_with_wrong_secret_gets_signature_error() {
    let fake = FakeRds::start(FakeRdsConfig::new(Fixture::Numeric))
        .await
        .unwrap();
    let output = run_sdk(&fake, "rm-bp1numeric00001", "wrong-secret").await;

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("SignatureDoesNotMatch"));
    assert!(output.stdout.is_empty());
}
