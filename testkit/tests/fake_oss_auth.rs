//! Authentication and addressing of the fake OSS over real HTTP: V4 signature checks, payload
//! hash rules, virtual-hosted and custom-domain addressing, and V1 presigned download URLs.

mod fake_oss_support;

use chrono::{Duration, Utc};
use fake_oss_support::{BUCKET, error_of, header, request, start};
use testkit::fake_oss::{FakeOss, FakeOssConfig};

async fn assert_rejected(response: reqwest::Response, status: u16, code: &str) {
    let (actual_status, actual_code, message) = error_of(response).await;
    assert_eq!(actual_code, code, "message: {message}");
    assert_eq!(actual_status, status, "code {actual_code}");
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let oss = start().await;
    let mut put = request(&oss, "PUT", "k").body(b"x".to_vec());
    put.secret = "wrong-secret".to_string();

    let response = put.send().await;

    assert!(!header(&response, "x-oss-request-id").is_empty());
    let body = response.text().await.expect("error body");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "reply {body}"
    );
    assert!(body.contains("<RequestId>"), "reply {body}");
    assert!(
        !body.contains("wrong-secret"),
        "the reply must not echo a secret"
    );
    assert!(oss.object(BUCKET, "k").is_none());
}

#[tokio::test]
async fn unknown_access_key_is_invalid_access_key_id() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.access_key_id = "LTAI-unknown".to_string();

    assert_rejected(get.send().await, 403, "InvalidAccessKeyId").await;
}

#[tokio::test]
async fn wrong_scope_region_is_rejected() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.region = "cn-shanghai".to_string();

    assert_rejected(get.send().await, 403, "SignatureDoesNotMatch").await;
}

#[tokio::test]
async fn missing_oss_date_is_signature_does_not_match() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.send_date = false;

    assert_rejected(get.send().await, 403, "SignatureDoesNotMatch").await;
}

#[tokio::test]
async fn stale_oss_date_is_request_time_too_skewed() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.time = Utc::now() - Duration::minutes(16);

    assert_rejected(get.send().await, 403, "RequestTimeTooSkewed").await;
}

#[tokio::test]
async fn date_within_fifteen_minutes_is_accepted() {
    let oss = start().await;
    let mut put = request(&oss, "PUT", "k");
    put.time = Utc::now() - Duration::minutes(14);

    assert_eq!(put.send().await.status(), 200);
}

#[tokio::test]
async fn unsigned_request_is_access_denied() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.sign = false;

    assert_rejected(get.send().await, 403, "AccessDenied").await;
}

#[tokio::test]
async fn streaming_payload_hash_is_invalid_argument() {
    let oss = start().await;
    let put = request(&oss, "PUT", "k")
        .header("x-oss-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .body(b"x".to_vec());

    assert_rejected(put.send().await, 400, "InvalidArgument").await;
}

#[tokio::test]
async fn malformed_payload_hash_is_invalid_argument() {
    let oss = start().await;
    let put = request(&oss, "PUT", "k")
        .header("x-oss-content-sha256", "not-a-hash")
        .body(b"x".to_vec());

    assert_rejected(put.send().await, 400, "InvalidArgument").await;
}

#[tokio::test]
async fn missing_payload_hash_is_invalid_argument() {
    let oss = start().await;
    let put = request(&oss, "PUT", "k")
        .without_header("x-oss-content-sha256")
        .body(b"x".to_vec());

    assert_rejected(put.send().await, 400, "InvalidArgument").await;
}

#[tokio::test]
async fn hex_payload_hash_is_accepted() {
    let oss = start().await;
    let hash = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881";
    let put = request(&oss, "PUT", "k")
        .header("x-oss-content-sha256", hash)
        .body(b"x".to_vec());

    assert_eq!(put.send().await.status(), 200);
}

#[tokio::test]
async fn aws_chunked_content_encoding_is_invalid_argument() {
    let oss = start().await;
    let put = request(&oss, "PUT", "k")
        .header("content-encoding", "aws-chunked")
        .body(b"x".to_vec());

    assert_rejected(put.send().await, 400, "InvalidArgument").await;
}

#[tokio::test]
async fn unknown_bucket_is_no_such_bucket() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.bucket = "other-bucket".to_string();
    get.authority = oss.bucket_authority("other-bucket");

    assert_rejected(get.send().await, 404, "NoSuchBucket").await;
}

#[tokio::test]
async fn path_style_on_loopback_is_rejected() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.authority = format!("127.0.0.1:{}", oss.port());
    get.path_style = true;

    assert_rejected(get.send().await, 403, "SecondLevelDomainForbidden").await;
}

#[tokio::test]
async fn path_style_on_endpoint_is_rejected() {
    let oss = start().await;
    let mut get = request(&oss, "GET", "k");
    get.authority = format!("{}:{}", oss.endpoint_host(), oss.port());
    get.path_style = true;

    assert_rejected(get.send().await, 403, "SecondLevelDomainForbidden").await;
}

async fn start_with_custom_domain() -> FakeOss {
    let mut config = FakeOssConfig::with_buckets(&[BUCKET]);
    config.custom_domains = vec![
        ("localhost".to_string(), BUCKET.to_string()),
        ("backup.example.com".to_string(), BUCKET.to_string()),
    ];
    FakeOss::start(config).await.expect("fake OSS starts")
}

#[tokio::test]
async fn custom_domain_serves_its_bucket_without_dns_override() {
    let oss = start_with_custom_domain().await;
    let mut put = request(&oss, "PUT", "via-cname").body(b"cname".to_vec());
    put.authority = format!("localhost:{}", oss.port());

    assert_eq!(put.send().await.status(), 200);
    assert_eq!(
        oss.read_object(BUCKET, "via-cname"),
        Some(b"cname".to_vec())
    );
}

#[tokio::test]
async fn custom_domain_name_is_matched_by_host_header() {
    let oss = start_with_custom_domain().await;
    oss.put_object_direct(BUCKET, "k", b"v", &[])
        .expect("seeded");
    let mut get = request(&oss, "GET", "k");
    get.authority = format!("backup.example.com:{}", oss.port());

    let response = get.send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        b"v".to_vec()
    );
}

#[tokio::test]
async fn security_token_is_required_when_configured() {
    let mut config = FakeOssConfig::with_buckets(&[BUCKET]);
    config.security_token = Some("sts-token".to_string());
    let oss = FakeOss::start(config).await.expect("fake OSS starts");

    let without = request(&oss, "PUT", "k").send().await;
    let wrong = request(&oss, "PUT", "k")
        .header("x-oss-security-token", "other")
        .send()
        .await;
    let right = request(&oss, "PUT", "k")
        .header("x-oss-security-token", "sts-token")
        .send()
        .await;

    assert_rejected(without, 403, "SignatureDoesNotMatch").await;
    assert_rejected(wrong, 403, "SignatureDoesNotMatch").await;
    assert_eq!(right.status(), 200);
    assert_eq!(
        oss.request_log()[2].header("x-oss-security-token"),
        Some("***")
    );
}

#[tokio::test]
async fn presigned_url_downloads_until_it_expires() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "backups/hins 1/备份.tar.gz", b"backup", &[])
        .expect("seeded");
    let client = oss.http_client().expect("client");

    let valid = oss.presign_get(
        BUCKET,
        "backups/hins 1/备份.tar.gz",
        Utc::now() + Duration::hours(1),
    );
    let response = client.get(&valid).send().await.expect("reply");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        b"backup".to_vec()
    );

    let expired = oss.presign_get(
        BUCKET,
        "backups/hins 1/备份.tar.gz",
        Utc::now() - Duration::seconds(1),
    );
    let (status, code, message) = error_of(client.get(&expired).send().await.expect("reply")).await;
    assert_eq!(status, 403);
    assert_eq!(code, "AccessDenied");
    assert_eq!(message, "Request has expired.");
}

#[tokio::test]
async fn presigned_url_with_bad_signature_is_rejected() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "k", b"v", &[])
        .expect("seeded");
    let valid = oss.presign_get(BUCKET, "k", Utc::now() + Duration::hours(1));
    let (prefix, _) = valid
        .split_once("&Signature=")
        .expect("signature parameter");
    let tampered = format!("{prefix}&Signature=AAAAAAAAAAAAAAAAAAAAAAAAAAA%3D");

    let response = oss
        .http_client()
        .expect("client")
        .get(&tampered)
        .send()
        .await
        .expect("reply");

    assert_rejected(response, 403, "SignatureDoesNotMatch").await;
}
