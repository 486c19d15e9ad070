//! OssStore against the fake OSS over real HTTP: single-request writes, reads, errors and the
//! custom-domain mode.

mod oss_client_support;

use std::collections::BTreeMap;

use backup_bridge::checksum::crc64;
use backup_bridge::storage::{ByteRange, ErrorKind, ObjectSink, ObjectSource, PutOptions};
use bytes::Bytes;
use oss_client_support::{
    BUCKET, CUSTOM_DOMAIN, collect, custom_domain_store, fake_config, pattern, standard_store,
    start_fake, start_fake_with, store_with_secret,
};

#[tokio::test]
async fn put_then_head_and_get_return_the_object() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let body = pattern(4096, 7);
    let mut metadata = BTreeMap::new();
    metadata.insert("crc64".to_string(), crc64(&body).to_string());
    metadata.insert("source-etag".to_string(), "abc123".to_string());
    let options = PutOptions {
        metadata,
        ..PutOptions::default()
    };

    let key = "mysql/db.t$1/a b+c/备份.gz";
    let outcome = store
        .put(key, Bytes::from(body.clone()), &options)
        .await
        .unwrap();
    assert_eq!(outcome.crc64, Some(crc64(&body)));
    assert!(
        outcome
            .etag
            .as_deref()
            .is_some_and(|etag| !etag.starts_with('"'))
    );

    let stored = oss
        .object(BUCKET, key)
        .expect("object stored under the decoded key");
    assert_eq!(stored.size, body.len() as u64);
    assert_eq!(
        stored.metadata.get("source-etag").map(String::as_str),
        Some("abc123")
    );

    let info = ObjectSink::head(&store, key)
        .await
        .unwrap()
        .expect("object found");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.crc64, Some(crc64(&body)));
    assert_eq!(info.etag, outcome.etag);
    assert_eq!(info.metadata.get("crc64"), Some(&crc64(&body).to_string()));
    assert_eq!(
        info.metadata.get("source-etag").map(String::as_str),
        Some("abc123")
    );

    let (info, stream) = store.get(key, None).await.unwrap();
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(collect(stream).await, body);
}

#[tokio::test]
async fn every_request_is_virtual_hosted_and_v4_signed() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    store
        .put("k", Bytes::from_static(b"abc"), &PutOptions::default())
        .await
        .unwrap();

    let log = oss.request_log();
    let put = log
        .iter()
        .find(|request| request.method == "PUT")
        .expect("PUT recorded");
    assert_eq!(put.host, oss.bucket_authority(BUCKET));
    assert_eq!(put.path, "/k");
    assert!(
        put.header("authorization")
            .is_some_and(|value| value.starts_with("OSS4-HMAC-SHA256 Credential="))
    );
    assert!(
        put.header("authorization")
            .is_some_and(|value| value.contains("/cn-hangzhou/oss/aliyun_v4_request"))
    );
    assert_eq!(put.header("x-oss-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    assert!(put.header("x-oss-date").is_some());
    assert_eq!(put.header("content-md5"), Some("kAFQmDzST7DWlj99KOF/cg=="));
    assert_eq!(put.status, 200);
}

#[tokio::test]
async fn head_of_missing_object_is_none() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    assert_eq!(
        ObjectSource::head(&store, "missing/key").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn get_of_missing_object_is_not_found() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let error = store
        .get("missing/key", None)
        .await
        .err()
        .expect("missing object fails");
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(error.code.as_deref(), Some("NoSuchKey"));
    assert_eq!(error.location, format!("oss://{BUCKET}/missing/key"));
    assert!(error.request_id.is_some());
}

#[tokio::test]
async fn ranged_get_returns_only_that_range() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let body = pattern(10_000, 3);
    store
        .put("ranged", Bytes::from(body.clone()), &PutOptions::default())
        .await
        .unwrap();

    let (info, stream) = store
        .get(
            "ranged",
            Some(ByteRange {
                first: 100,
                last: 1099,
            }),
        )
        .await
        .unwrap();
    assert_eq!(info.size, 10_000);
    assert_eq!(info.crc64, Some(crc64(&body)));
    assert_eq!(collect(stream).await, body[100..1100].to_vec());
}

#[tokio::test]
async fn forbid_overwrite_conflict_is_already_exists() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let options = PutOptions {
        forbid_overwrite: true,
        ..PutOptions::default()
    };
    store
        .put("once", Bytes::from_static(b"first"), &options)
        .await
        .unwrap();

    let error = store
        .put("once", Bytes::from_static(b"second"), &options)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert_eq!(error.code.as_deref(), Some("FileAlreadyExists"));
    assert_eq!(
        oss.read_object(BUCKET, "once").as_deref(),
        Some(&b"first"[..])
    );
}

#[tokio::test]
async fn wrong_secret_is_permanent_signature_error() {
    let oss = start_fake().await;
    let store = store_with_secret(&oss, "not-the-secret");
    let error = store
        .put("k", Bytes::from_static(b"abc"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert_eq!(error.code.as_deref(), Some("SignatureDoesNotMatch"));
    assert!(error.request_id.is_some());
    assert!(!error.to_string().contains("not-the-secret"));
    assert!(oss.object(BUCKET, "k").is_none());
}

#[tokio::test]
async fn head_with_wrong_secret_fails() {
    let oss = start_fake().await;
    oss.put_object_direct(BUCKET, "k", b"abc", &[]).unwrap();
    let store = store_with_secret(&oss, "not-the-secret");
    let error = ObjectSource::head(&store, "k").await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
}

#[tokio::test]
async fn custom_domain_mode_sends_requests_to_the_domain() {
    let oss = start_fake().await;
    let store = custom_domain_store(&oss);
    store
        .put(
            "mysql/a.gz",
            Bytes::from_static(b"hello"),
            &PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        oss.read_object(BUCKET, "mysql/a.gz").as_deref(),
        Some(&b"hello"[..])
    );

    let (_, stream) = store.get("mysql/a.gz", None).await.unwrap();
    assert_eq!(collect(stream).await, b"hello");

    let log = oss.request_log();
    assert!(!log.is_empty());
    for request in &log {
        assert_eq!(request.host, format!("{CUSTOM_DOMAIN}:{}", oss.port()));
        assert!(request.path.starts_with("/mysql/"), "{}", request.path);
    }
}

#[tokio::test]
async fn zero_byte_put_stores_an_empty_object() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let outcome = store
        .put("empty", Bytes::new(), &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.crc64, Some(0));
    assert_eq!(
        oss.object(BUCKET, "empty").map(|object| object.size),
        Some(0)
    );
}

#[tokio::test]
async fn delete_removes_the_object() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    oss.put_object_direct(BUCKET, "gone", b"abc", &[]).unwrap();
    store.delete("gone").await.unwrap();
    assert!(oss.object(BUCKET, "gone").is_none());
    store.delete("gone").await.unwrap();
}

#[tokio::test]
async fn replace_metadata_copies_the_object_onto_itself() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let body = pattern(300_000, 3);
    let key = "mysql/db.t$1/a b+c/备份.gz";
    let first = PutOptions {
        metadata: BTreeMap::from([("source-etag".to_string(), "abc123".to_string())]),
        ..PutOptions::default()
    };
    let written = store
        .put(key, Bytes::from(body.clone()), &first)
        .await
        .unwrap();
    let etag = written.etag.unwrap();
    let replaced = PutOptions {
        metadata: BTreeMap::from([
            ("source-etag".to_string(), "abc123".to_string()),
            ("crc64ecma".to_string(), crc64(&body).to_string()),
        ]),
        content_type: Some("application/octet-stream".into()),
        // Ignored for a copy onto itself, which would otherwise always fail.
        forbid_overwrite: true,
    };

    assert!(store.replace_metadata(key, &etag, &replaced).await.unwrap());

    let stored = oss.object(BUCKET, key).unwrap();
    assert_eq!(stored.metadata, replaced.metadata);
    assert_eq!(stored.crc64, crc64(&body));
    assert_eq!(stored.size, body.len() as u64);
    let request = oss.request_log().pop().unwrap();
    assert_eq!(request.method, "PUT");
    assert!(
        request
            .headers
            .iter()
            .any(|(name, value)| name == "x-oss-metadata-directive" && value == "REPLACE")
    );
}

#[tokio::test]
async fn replace_metadata_refuses_an_object_that_changed() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    oss.put_object_direct(BUCKET, "changed", b"abc", &[("owner", "someone")])
        .unwrap();
    let options = PutOptions {
        metadata: BTreeMap::from([("crc64ecma".to_string(), "1".to_string())]),
        ..PutOptions::default()
    };

    let error = store
        .replace_metadata("changed", "0123456789ABCDEF0123456789ABCDEF", &options)
        .await
        .unwrap_err();

    assert_eq!(error.code.as_deref(), Some("PreconditionFailed"), "{error}");
    assert!(!error.is_retryable(), "{error}");
    let stored = oss.object(BUCKET, "changed").unwrap();
    assert_eq!(
        stored.metadata.get("owner").map(String::as_str),
        Some("someone")
    );
    let missing = store
        .replace_metadata("missing", "00", &options)
        .await
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");
}

#[tokio::test]
async fn cut_download_fails_as_transient() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    oss.put_object_direct(BUCKET, "big", &pattern(200_000, 1), &[])
        .unwrap();
    oss.cut_downloads_after(Some(1000));

    let (_, mut stream) = store.get("big", None).await.unwrap();
    let mut received = 0;
    let failure = loop {
        match futures::StreamExt::next(&mut stream).await {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    let error = failure.expect("a cut body ends with an error, not a short success");
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(received < 200_000);
}

#[tokio::test]
async fn temporary_credentials_send_the_security_token() {
    let mut config = fake_config();
    config.security_token = Some("sts-token-for-tests".to_string());
    let oss = start_fake_with(config).await;
    let store = standard_store(&oss);

    store
        .put("k", Bytes::from_static(b"abc"), &PutOptions::default())
        .await
        .unwrap();
    let log = oss.request_log();
    assert_eq!(log.len(), 1);
    assert!(log[0].header("x-oss-security-token").is_some());
    assert_eq!(oss.read_object(BUCKET, "k").as_deref(), Some(&b"abc"[..]));
}

#[tokio::test]
async fn closed_port_is_transient() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    drop(oss);

    let error = store
        .put("k", Bytes::from_static(b"abc"), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(error.message.contains("failed to connect"), "{error}");
}

#[tokio::test]
async fn range_past_the_end_is_permanent() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    oss.put_object_direct(BUCKET, "small", b"0123456789", &[])
        .unwrap();

    let range = ByteRange {
        first: 100,
        last: 199,
    };
    let error = store
        .get("small", Some(range))
        .await
        .err()
        .expect("range past the end fails");
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert_eq!(error.code.as_deref(), Some("InvalidRange"));
}

#[tokio::test]
async fn key_with_dot_segment_is_rejected_before_sending() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let error = store
        .put(
            "mysql/../k",
            Bytes::from_static(b"abc"),
            &PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(error.message.contains("invalid object key"), "{error}");
    assert!(oss.request_log().is_empty());
}
