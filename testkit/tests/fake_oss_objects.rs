//! PutObject, GetObject, HeadObject and DeleteObject against the fake OSS over real HTTP.

mod fake_oss_support;

use backup_bridge::checksum::{content_md5, crc64};
use fake_oss_support::{BUCKET, error_of, header, pattern, request, start};

#[tokio::test]
async fn put_object_stores_body_and_returns_checksums() {
    let oss = start().await;
    let body = b"123456789".to_vec();

    let response = request(&oss, "PUT", "mysql/backup 1.sql")
        .header("x-oss-meta-source-etag", "abc")
        .body(body.clone())
        .send()
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        "11051210869376104954"
    );
    assert_eq!(
        header(&response, "etag"),
        "\"25F9E794323B453885F5181F1B624D0B\""
    );
    assert!(!header(&response, "x-oss-request-id").is_empty());
    let stored = oss
        .object(BUCKET, "mysql/backup 1.sql")
        .expect("object stored");
    assert_eq!(stored.size, 9);
    assert_eq!(stored.crc64, crc64(&body));
    assert_eq!(
        stored.metadata.get("source-etag").map(String::as_str),
        Some("abc")
    );
    assert_eq!(oss.read_object(BUCKET, "mysql/backup 1.sql"), Some(body));
}

#[tokio::test]
async fn get_object_returns_body_metadata_and_whole_crc() {
    let oss = start().await;
    let body = pattern(300_000, 7);
    oss.put_object_direct(BUCKET, "a/备份+$.gz", &body, &[("crc64", "42")])
        .expect("seeded");

    let response = request(&oss, "GET", "a/备份+$.gz").send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        crc64(&body).to_string()
    );
    assert_eq!(header(&response, "x-oss-meta-crc64"), "42");
    assert_eq!(header(&response, "content-length"), "300000");
    assert_eq!(response.bytes().await.expect("body").to_vec(), body);
}

#[tokio::test]
async fn head_object_returns_headers_without_body() {
    let oss = start().await;
    let body = pattern(1000, 1);
    oss.put_object_direct(BUCKET, "k", &body, &[("source-etag", "e1")])
        .expect("seeded");

    let response = request(&oss, "HEAD", "k").send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "1000");
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        crc64(&body).to_string()
    );
    assert_eq!(header(&response, "x-oss-meta-source-etag"), "e1");
    assert_eq!(header(&response, "x-oss-object-type"), "Normal");
}

#[tokio::test]
async fn head_of_missing_key_carries_error_in_header() {
    let oss = start().await;

    let response = request(&oss, "HEAD", "missing").send().await;

    assert_eq!(response.status(), 404);
    let encoded = header(&response, "x-oss-err");
    let xml = String::from_utf8(base64_decode(&encoded)).expect("utf-8 XML");
    assert!(
        xml.contains("<Code>NoSuchKey</Code>"),
        "x-oss-err holds {xml}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("valid base64")
}

#[tokio::test]
async fn get_missing_key_is_no_such_key() {
    let oss = start().await;

    let (status, code, _) = error_of(request(&oss, "GET", "missing").send().await).await;

    assert_eq!(status, 404);
    assert_eq!(code, "NoSuchKey");
}

#[tokio::test]
async fn get_with_closed_range_returns_partial_content() {
    let oss = start().await;
    let body = pattern(1000, 3);
    oss.put_object_direct(BUCKET, "r", &body, &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=100-199")
        .send()
        .await;

    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 100-199/1000");
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        crc64(&body).to_string()
    );
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        body[100..200].to_vec()
    );
}

#[tokio::test]
async fn get_with_open_range_returns_the_tail() {
    let oss = start().await;
    let body = pattern(1000, 4);
    oss.put_object_direct(BUCKET, "r", &body, &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=990-")
        .send()
        .await;

    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 990-999/1000");
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        body[990..].to_vec()
    );
}

#[tokio::test]
async fn get_with_unsatisfiable_range_returns_whole_object() {
    let oss = start().await;
    let body = pattern(10, 5);
    oss.put_object_direct(BUCKET, "r", &body, &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=50-60")
        .send()
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("body").to_vec(), body);
}

#[tokio::test]
async fn get_with_end_beyond_object_returns_whole_object() {
    let oss = start().await;
    let body = pattern(1000, 6);
    oss.put_object_direct(BUCKET, "r", &body, &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=500-2000")
        .send()
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.expect("body").to_vec(), body);
}

#[tokio::test]
async fn standard_range_behavior_trims_end() {
    let oss = start().await;
    let body = pattern(1000, 6);
    oss.put_object_direct(BUCKET, "r", &body, &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=500-2000")
        .header("x-oss-range-behavior", "standard")
        .send()
        .await;

    assert_eq!(response.status(), 206);
    assert_eq!(header(&response, "content-range"), "bytes 500-999/1000");
    assert_eq!(
        response.bytes().await.expect("body").to_vec(),
        body[500..].to_vec()
    );
}

#[tokio::test]
async fn get_with_standard_range_behavior_rejects_bad_range() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "r", &pattern(10, 5), &[])
        .expect("seeded");

    let response = request(&oss, "GET", "r")
        .header("range", "bytes=50-60")
        .header("x-oss-range-behavior", "standard")
        .send()
        .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 416);
    assert_eq!(code, "InvalidRange");
}

#[tokio::test]
async fn put_with_wrong_content_md5_is_invalid_digest() {
    let oss = start().await;

    let response = request(&oss, "PUT", "k")
        .header("content-md5", &content_md5(b"other"))
        .body(b"body".to_vec())
        .send()
        .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 400);
    assert_eq!(code, "InvalidDigest");
    assert!(oss.object(BUCKET, "k").is_none());
}

#[tokio::test]
async fn put_with_right_content_md5_is_accepted() {
    let oss = start().await;

    let response = request(&oss, "PUT", "k")
        .header("content-md5", &content_md5(b"body"))
        .body(b"body".to_vec())
        .send()
        .await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn put_with_forbid_overwrite_on_existing_key_conflicts() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "k", b"first", &[])
        .expect("seeded");

    let response = request(&oss, "PUT", "k")
        .header("x-oss-forbid-overwrite", "true")
        .body(b"second".to_vec())
        .send()
        .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 409);
    assert_eq!(code, "FileAlreadyExists");
    assert_eq!(oss.read_object(BUCKET, "k"), Some(b"first".to_vec()));
}

#[tokio::test]
async fn put_without_forbid_overwrite_replaces_object() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "k", b"first", &[])
        .expect("seeded");

    let response = request(&oss, "PUT", "k")
        .body(b"second".to_vec())
        .send()
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(oss.read_object(BUCKET, "k"), Some(b"second".to_vec()));
}

#[tokio::test]
async fn put_zero_byte_object_has_zero_crc() {
    let oss = start().await;

    let response = request(&oss, "PUT", "empty").send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-oss-hash-crc64ecma"), "0");
    assert_eq!(
        oss.object(BUCKET, "empty").map(|object| object.size),
        Some(0)
    );
}

#[tokio::test]
async fn delete_object_removes_it() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "k", b"x", &[])
        .expect("seeded");

    let response = request(&oss, "DELETE", "k").send().await;

    assert_eq!(response.status(), 204);
    assert!(oss.object(BUCKET, "k").is_none());
}

#[tokio::test]
async fn cut_download_closes_connection_mid_body() {
    let oss = start().await;
    oss.put_object_direct(BUCKET, "big", &pattern(1_000_000, 9), &[])
        .expect("seeded");
    oss.cut_downloads_after(Some(4096));

    let response = request(&oss, "GET", "big").send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "1000000");
    assert!(
        response.bytes().await.is_err(),
        "the body must fail before its promised length"
    );

    oss.cut_downloads_after(None);
    let response = request(&oss, "GET", "big").send().await;
    assert_eq!(response.bytes().await.expect("full body").len(), 1_000_000);
}

#[tokio::test]
async fn request_log_records_method_host_and_headers() {
    let oss = start().await;

    request(&oss, "PUT", "logged")
        .header("x-oss-meta-a", "1")
        .body(b"x".to_vec())
        .send()
        .await;

    let log = oss.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "PUT");
    assert_eq!(log[0].host, oss.bucket_authority(BUCKET));
    assert_eq!(log[0].path, "/logged");
    assert_eq!(log[0].header("x-oss-meta-a"), Some("1"));
    assert_eq!(log[0].status, 200);
}
