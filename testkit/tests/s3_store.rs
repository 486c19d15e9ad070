//! S3Store against moto over real HTTP: streaming reads, ranges, metadata, overwrite
//! protection, error mapping and paginated listing.

use std::collections::BTreeMap;

use backup_bridge::checksum::crc64;
use backup_bridge::storage::s3::{CRC64_METADATA_KEY, S3Store};
use backup_bridge::storage::{
    ByteRange, ByteStream, ErrorKind, ObjectLister, ObjectSink, ObjectSource, PutOptions,
};
use bytes::Bytes;
use futures::TryStreamExt;

const MIB: usize = 1024 * 1024;

async fn store(prefix: &str) -> S3Store {
    let bucket = testkit::aws::unique_bucket(prefix).await;
    S3Store::new(testkit::aws::s3_client(), bucket)
}

/// Bytes that differ from offset to offset, so a misplaced range cannot compare equal.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn collect(stream: ByteStream) -> Vec<u8> {
    let chunks: Vec<Bytes> = stream
        .try_collect()
        .await
        .expect("body streams without error");
    chunks.concat()
}

#[tokio::test]
async fn get_streams_whole_object_and_range() {
    let store = store("get-range").await;
    let body = pattern(6 * MIB + 123);
    store
        .put("mysql/big.bin", body.clone(), &PutOptions::default())
        .await
        .unwrap();

    let (info, stream) = ObjectSource::get(&store, "mysql/big.bin", None)
        .await
        .unwrap();
    assert_eq!(info.size, body.len() as u64);
    let whole = collect(stream).await;
    assert_eq!(whole.len(), body.len());
    assert!(whole == body, "streamed body differs from what was put");

    let range = ByteRange {
        first: MIB as u64 + 5,
        last: 3 * MIB as u64 + 9,
    };
    let (info, stream) = ObjectSource::get(&store, "mysql/big.bin", Some(range))
        .await
        .unwrap();
    assert_eq!(
        info.size,
        body.len() as u64,
        "size is the whole object's, not the range's"
    );
    let part = collect(stream).await;
    assert_eq!(part.len(), (range.last - range.first + 1) as usize);
    assert!(part[..] == body[range.first as usize..=range.last as usize]);
}

#[tokio::test]
async fn put_metadata_and_crc64_are_read_back() {
    let store = store("metadata").await;
    let body = pattern(4096);
    let mut metadata = BTreeMap::new();
    metadata.insert(CRC64_METADATA_KEY.to_owned(), crc64(&body).to_string());
    metadata.insert("source-etag".to_owned(), "abc123".to_owned());
    let options = PutOptions {
        metadata,
        content_type: Some("application/octet-stream".into()),
        ..PutOptions::default()
    };
    let outcome = store
        .put("mysql/with-meta.bin", body.clone(), &options)
        .await
        .unwrap();
    assert!(outcome.etag.is_some_and(|etag| !etag.contains('"')));

    let info = ObjectSource::head(&store, "mysql/with-meta.bin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.size, 4096);
    assert_eq!(info.crc64, Some(crc64(&body)));
    assert_eq!(
        info.metadata.get("source-etag").map(String::as_str),
        Some("abc123")
    );

    let (info, _stream) = ObjectSource::get(&store, "mysql/with-meta.bin", None)
        .await
        .unwrap();
    assert_eq!(info.crc64, Some(crc64(&body)));
}

#[tokio::test]
async fn put_without_crc_metadata_reports_no_crc64() {
    let store = store("no-crc").await;
    store
        .put("plain.bin", pattern(10), &PutOptions::default())
        .await
        .unwrap();
    let info = ObjectSource::head(&store, "plain.bin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.crc64, None);
}

#[tokio::test]
async fn forbid_overwrite_rejects_existing_object() {
    let store = store("forbid").await;
    let options = PutOptions {
        forbid_overwrite: true,
        ..PutOptions::default()
    };
    store
        .put("mysql/once.bin", pattern(100), &options)
        .await
        .unwrap();

    let error = store
        .put("mysql/once.bin", pattern(200), &options)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert_eq!(error.operation, "PutObject");
    assert_eq!(error.code.as_deref(), Some("PreconditionFailed"));
    assert!(error.location.ends_with("/mysql/once.bin"));

    let info = ObjectSource::head(&store, "mysql/once.bin")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.size, 100, "the first object is untouched");
}

#[tokio::test]
async fn missing_key_maps_to_not_found() {
    let store = store("missing").await;
    let head = ObjectSource::head(&store, "mysql/absent.bin")
        .await
        .unwrap();
    assert_eq!(head, None);

    let Err(error) = ObjectSource::get(&store, "mysql/absent.bin", None).await else {
        panic!("get of a missing key succeeded");
    };
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(error.code.as_deref(), Some("NoSuchKey"));
    assert_eq!(
        error.location,
        format!("s3://{}/mysql/absent.bin", store.bucket())
    );
    assert!(!error.is_retryable());
    assert!(error.to_string().starts_with("GetObject failed for s3://"));
}

#[tokio::test]
async fn missing_bucket_is_a_permanent_error_with_code() {
    let store = S3Store::new(testkit::aws::s3_client(), "no-such-bucket-backup-bridge");
    let error = store
        .put("k", pattern(1), &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("NoSuchBucket"));
    assert_eq!(
        error.kind,
        ErrorKind::Permanent,
        "a missing bucket must not read as a deleted object"
    );
}

#[tokio::test]
async fn list_follows_every_page() {
    let store = store("list").await.with_list_page_size(7);
    for i in 0..23 {
        let key = format!("mysql/export/part-{i:03}.parquet");
        store
            .put(&key, pattern(i + 1), &PutOptions::default())
            .await
            .unwrap();
    }
    store
        .put("other/outside.bin", pattern(5), &PutOptions::default())
        .await
        .unwrap();

    let listed = store.list("mysql/").await.unwrap();
    assert_eq!(listed.len(), 23);
    for (i, object) in listed.iter().enumerate() {
        assert_eq!(object.key, format!("mysql/export/part-{i:03}.parquet"));
        assert_eq!(object.size, i as u64 + 1);
        assert!(object.etag.as_ref().is_some_and(|etag| !etag.contains('"')));
    }
    assert_eq!(store.list("nothing/").await.unwrap(), Vec::new());
}
