use super::response::xml_element;
use super::*;
use crate::storage::{ErrorKind, StorageError};

fn config() -> HttpSourceConfig {
    HttpSourceConfig::default()
}

#[test]
fn accepts_https_hosts_under_aliyuncs_com() {
    let url =
        "https://rdsbak-hz.oss-cn-hangzhou.aliyuncs.com/custins1/a_qp.xb?Expires=1&Signature=x";
    assert!(config().check_url(url).is_ok());
}

#[test]
fn rejects_hosts_outside_the_allowlist() {
    for url in [
        "https://example.com/a",
        "https://aliyuncs.com.example.com/a",
        "https://evilaliyuncs.com/a",
        "https://169.254.169.254/latest/meta-data",
        "https://user:pass@rds.aliyuncs.com/a",
    ] {
        assert!(config().check_url(url).is_err(), "{url} was accepted");
    }
}

#[test]
fn rejects_plain_http_unless_allowed() {
    let url = "http://bucket.oss-cn-hangzhou.aliyuncs.com/a";
    assert!(config().check_url(url).is_err());
    let allowed = HttpSourceConfig {
        allow_plain_http: true,
        ..config()
    };
    assert!(allowed.check_url(url).is_ok());
    assert!(
        allowed
            .check_url("ftp://bucket.oss-cn-hangzhou.aliyuncs.com/a")
            .is_err()
    );
}

#[test]
fn redact_drops_the_signed_query() {
    let url = "https://b.oss-cn-hangzhou.aliyuncs.com/k/a.xb?Expires=1&OSSAccessKeyId=ak&Signature=secret";
    assert_eq!(redact(url), "https://b.oss-cn-hangzhou.aliyuncs.com/k/a.xb");
}

#[test]
fn expired_url_is_recognised_by_code_and_message() {
    let expired = StorageError::new(
        ErrorKind::Permanent,
        "GetObject",
        "u",
        "Request has expired.",
    )
    .with_code("AccessDenied");
    let denied = StorageError::new(ErrorKind::Permanent, "GetObject", "u", "Access denied.")
        .with_code("AccessDenied");
    assert!(is_expired_url(&expired));
    assert!(!is_expired_url(&denied));
}

#[test]
fn xml_element_reads_oss_error_fields() {
    let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired.</Message><RequestId>R1</RequestId></Error>";
    assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
    assert_eq!(xml_element(body, "RequestId").as_deref(), Some("R1"));
    assert_eq!(xml_element(body, "HostId"), None);
}

#[test]
fn presigned_expiry_reads_v1_and_v4_urls() {
    let v1 =
        "https://b.oss-cn-hangzhou.aliyuncs.com/k?Expires=1714960000&OSSAccessKeyId=a&Signature=s";
    assert_eq!(
        presigned_expiry(v1),
        DateTime::from_timestamp(1_714_960_000, 0)
    );
    let v4 = "https://b.oss-cn-hangzhou.aliyuncs.com/k?x-oss-date=20240501T020000Z&x-oss-expires=3600&x-oss-signature=s";
    let expected = chrono::TimeZone::with_ymd_and_hms(&Utc, 2024, 5, 1, 3, 0, 0).unwrap();
    assert_eq!(presigned_expiry(v4), Some(expected));
    assert_eq!(
        presigned_expiry("https://b.oss-cn-hangzhou.aliyuncs.com/k"),
        None
    );
}
