//! Runs `testkit/python/oss_sdk_fidelity.py`, which drives the fake OSS with the official Alibaba
//! Cloud Python SDK, and checks that the objects the SDK wrote are stored with the right CRC-64.

use std::path::{Path, PathBuf};

use backup_bridge::checksum::crc64;
use testkit::fake_oss::{FakeOss, FakeOssConfig};

const BUCKET: &str = "fidelity-bucket";

/// Finds the project virtualenv: `BACKUP_BRIDGE_VENV`, or the nearest `.venv` above this crate.
fn find_venv() -> PathBuf {
    if let Some(path) = std::env::var_os("BACKUP_BRIDGE_VENV") {
        return PathBuf::from(path);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .map(|dir| dir.join(".venv"))
        .find(|venv| venv.join("bin/python").exists())
        .unwrap_or_else(|| {
            panic!(
                "no .venv with bin/python found above {}: run `make setup` first",
                manifest_dir.display()
            )
        })
}

/// Builds the bytes that the script builds, by the same rule: byte i is (i * 31 + seed) mod 256.
fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn official_python_sdk_round_trips_through_fake() {
    let python = find_venv().join("bin/python");
    let oss = FakeOss::start(FakeOssConfig::with_buckets(&[BUCKET]))
        .await
        .expect("fake OSS starts");
    let config = oss.config();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/oss_sdk_fidelity.py");

    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--port", &oss.port().to_string()])
        .args(["--region", &config.region])
        .args(["--bucket", BUCKET])
        .args(["--access-key-id", &config.access_key_id])
        .args(["--access-key-secret", &config.access_key_secret])
        .args(["--prefix", "fidelity/"])
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "failed to run {}: {error}; run `make setup` first",
                python.display()
            )
        });

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "script exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    let reported: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("script prints a JSON object");
    let put_crc = crc64(&pattern(300 * 1024, 1));
    let multipart_crc = crc64(
        &[
            pattern(200 * 1024, 2),
            pattern(200 * 1024, 3),
            pattern(200 * 1024, 4),
        ]
        .concat(),
    );

    let put = oss
        .object(BUCKET, "fidelity/put.bin")
        .expect("PutObject stored");
    assert_eq!(put.crc64, put_crc);
    assert_eq!(put.size, 300 * 1024);
    assert_eq!(reported["fidelity/put.bin"], put_crc.to_string());

    let multipart = oss
        .object(BUCKET, "fidelity/multipart.bin")
        .expect("multipart object stored");
    assert_eq!(multipart.crc64, multipart_crc);
    assert_eq!(multipart.size, 3 * 200 * 1024);
    assert_eq!(multipart.parts, Some(3));
    // CopyObject onto itself replaced the metadata and kept the bytes.
    assert_eq!(
        multipart.metadata.get("crc64ecma"),
        Some(&multipart_crc.to_string())
    );
    assert_eq!(
        reported["fidelity/multipart.bin"],
        multipart_crc.to_string()
    );

    let log = oss.request_log();
    assert!(
        log.iter().all(|request| request
            .header("authorization")
            .is_some_and(|value| value.starts_with("OSS4-HMAC-SHA256 "))),
        "every SDK request is V4-signed"
    );
    assert!(
        log.iter()
            .all(|request| request.host.starts_with(&format!("{BUCKET}.oss-"))),
        "every SDK request is virtual-hosted"
    );
    assert_eq!(
        log.iter().filter(|request| request.status == 403).count(),
        1,
        "only the wrong-secret request is rejected"
    );
    assert!(
        oss.object(BUCKET, "fidelity/rejected").is_none(),
        "the wrong-secret put must not store anything"
    );
    assert!(oss.pending_uploads(BUCKET).is_empty());
}
