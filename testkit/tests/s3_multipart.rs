//! S3Store multipart uploads against moto over real HTTP.

use backup_bridge::storage::s3::S3Store;
use backup_bridge::storage::{ErrorKind, ObjectSink, ObjectSource, PutOptions, UploadedPart};
use bytes::Bytes;
use futures::TryStreamExt;

const MIB: usize = 1024 * 1024;

async fn store(prefix: &str) -> S3Store {
    let bucket = testkit::aws::unique_bucket(prefix).await;
    S3Store::new(testkit::aws::s3_client(), bucket)
}

/// Bytes that depend on their offset and on `seed`, so swapped parts cannot compare equal.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| ((i.wrapping_mul(31) >> 2) as u8) ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

async fn upload_three_parts(
    store: &S3Store,
    key: &str,
    upload_id: &str,
) -> (Vec<UploadedPart>, Vec<u8>) {
    let bodies = [
        pattern(5 * MIB, 1),
        pattern(5 * MIB, 2),
        pattern(MIB + 17, 3),
    ];
    let mut parts = Vec::new();
    let mut whole = Vec::new();
    for (index, body) in bodies.into_iter().enumerate() {
        whole.extend_from_slice(&body);
        let part_number = index as u32 + 1;
        let part = store
            .upload_part(key, upload_id, part_number, body.clone())
            .await
            .unwrap();
        assert_eq!(part.part_number, part_number);
        assert_eq!(part.size, body.len() as u64);
        assert!(!part.etag.contains('"'));
        parts.push(part);
    }
    (parts, whole)
}

#[tokio::test]
async fn three_part_upload_reads_back_byte_identical() {
    let store = store("multipart").await;
    let key = "mysql/export/db.table/part-00000.gz.parquet";
    let options = PutOptions::default();
    let upload_id = store.create_multipart(key, &options).await.unwrap();

    let (parts, whole) = upload_three_parts(&store, key, &upload_id).await;
    let pending = store.list_pending_uploads("mysql/").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].upload_id, upload_id);

    let outcome = store
        .complete_multipart(key, &upload_id, &parts, &options)
        .await
        .unwrap();
    assert!(outcome.etag.is_some_and(|etag| etag.ends_with("-3")));

    let (info, stream) = ObjectSource::get(&store, key, None).await.unwrap();
    assert_eq!(info.size, whole.len() as u64);
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    let read_back = chunks.concat();
    assert_eq!(read_back.len(), whole.len());
    assert!(
        read_back == whole,
        "completed object differs from the uploaded parts"
    );
    assert_eq!(
        store.list_pending_uploads("mysql/").await.unwrap(),
        Vec::new()
    );
}

#[tokio::test]
async fn abort_leaves_no_pending_upload() {
    let store = store("abort").await;
    let key = "mysql/aborted.bin";
    let upload_id = store
        .create_multipart(key, &PutOptions::default())
        .await
        .unwrap();
    store
        .upload_part(key, &upload_id, 1, pattern(1024, 9))
        .await
        .unwrap();

    store.abort_multipart(key, &upload_id).await.unwrap();
    assert_eq!(store.list_pending_uploads("").await.unwrap(), Vec::new());
    assert_eq!(ObjectSource::head(&store, key).await.unwrap(), None);

    // A second abort meets NoSuchUpload, which counts as aborted.
    store.abort_multipart(key, &upload_id).await.unwrap();
}

// moto 5.2.5 replies to UploadPart and CompleteMultipartUpload on an unknown upload id with a
// bare 500 where S3 sends 404 NoSuchUpload. ListParts gets it right, so the mapping is proven there.
#[tokio::test]
async fn unknown_upload_id_maps_to_no_such_upload() {
    let store = store("unknown-upload").await;
    let error = store
        .list_parts("k.bin", "not-an-upload-id")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoSuchUpload, "{error}");
    assert_eq!(error.code.as_deref(), Some("NoSuchUpload"));
    assert_eq!(error.operation, "ListParts");
    assert!(error.location.contains("not-an-upload-id"));
}

// moto 5.2.5 serialised ListParts with a `ListPartsResponse` root element, which aws-sdk-s3
// rejects; 5.2.6 (the pinned version) sends `ListPartsResult` as S3 does.
#[tokio::test]
async fn list_parts_reports_uploaded_parts() {
    let store = store("list-parts").await;
    let key = "mysql/listed.bin";
    let upload_id = store
        .create_multipart(key, &PutOptions::default())
        .await
        .unwrap();
    let (parts, _) = upload_three_parts(&store, key, &upload_id).await;

    let listed = store.list_parts(key, &upload_id).await.unwrap();
    assert_eq!(listed, parts, "ListParts reports what UploadPart returned");
    store.abort_multipart(key, &upload_id).await.unwrap();
}

#[tokio::test]
async fn complete_with_forbid_overwrite_rejects_existing_object() {
    let store = store("complete-forbid").await;
    let key = "mysql/raced.bin";
    let forbid = PutOptions {
        forbid_overwrite: true,
        ..PutOptions::default()
    };
    let upload_id = store.create_multipart(key, &forbid).await.unwrap();
    let (parts, _) = upload_three_parts(&store, key, &upload_id).await;
    store
        .put(key, pattern(8, 4), &PutOptions::default())
        .await
        .unwrap();

    let error = store
        .complete_multipart(key, &upload_id, &parts, &forbid)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert_eq!(error.operation, "CompleteMultipartUpload");
    let info = ObjectSource::head(&store, key).await.unwrap().unwrap();
    assert_eq!(info.size, 8, "the object written meanwhile is untouched");
    store.abort_multipart(key, &upload_id).await.unwrap();
}

#[tokio::test]
async fn pending_uploads_are_listed_by_prefix() {
    let store = store("pending").await;
    let options = PutOptions::default();
    let mut expected = Vec::new();
    for key in ["mysql/a.bin", "mysql/b.bin", "mysql/b.bin"] {
        let upload_id = store.create_multipart(key, &options).await.unwrap();
        expected.push((key.to_owned(), upload_id));
    }
    let other_id = store
        .create_multipart("other/c.bin", &options)
        .await
        .unwrap();

    let mut listed: Vec<(String, String)> = store
        .list_pending_uploads("mysql/")
        .await
        .unwrap()
        .into_iter()
        .map(|upload| (upload.key, upload.upload_id))
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);

    for (key, upload_id) in &expected {
        store.abort_multipart(key, upload_id).await.unwrap();
    }
    store
        .abort_multipart("other/c.bin", &other_id)
        .await
        .unwrap();
    assert_eq!(store.list_pending_uploads("").await.unwrap(), Vec::new());
}
