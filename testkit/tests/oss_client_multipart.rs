//! OssStore multipart uploads against the fake OSS over real HTTP.

mod oss_client_support;

use backup_bridge::checksum::crc64;
use backup_bridge::storage::{ErrorKind, ObjectSink, PutOptions, UploadedPart};
use bytes::Bytes;
use oss_client_support::{BUCKET, pattern, standard_store, start_fake};

/// OSS requires every part but the last to be at least 100 KB (102400 bytes).
const PART_SIZE: usize = 200 * 1024;

#[tokio::test]
async fn multipart_upload_with_three_parts_completes() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let key = "mysql/export/part-00000.gz.parquet";
    let bodies = [
        pattern(PART_SIZE, 1),
        pattern(PART_SIZE, 2),
        pattern(50_000, 3),
    ];
    let whole: Vec<u8> = bodies.concat();

    let mut options = PutOptions::default();
    options
        .metadata
        .insert("crc64".into(), crc64(&whole).to_string());
    let upload_id = store.create_multipart(key, &options).await.unwrap();
    assert_eq!(
        oss.pending_uploads(BUCKET),
        vec![(key.to_string(), upload_id.clone())]
    );

    // Upload out of order: the store must still complete in ascending order.
    let mut parts = Vec::new();
    for index in [2usize, 0, 1] {
        let part_number = index as u32 + 1;
        let body = Bytes::from(bodies[index].clone());
        let part = store
            .upload_part(key, &upload_id, part_number, body)
            .await
            .unwrap();
        assert_eq!(part.part_number, part_number);
        assert_eq!(part.size, bodies[index].len() as u64);
        assert_eq!(part.crc64, Some(crc64(&bodies[index])));
        parts.push(part);
    }

    let listed = store.list_parts(key, &upload_id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|part| part.part_number)
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let mut sorted = parts.clone();
    sorted.sort_by_key(|part| part.part_number);
    assert_eq!(
        listed.iter().map(|part| &part.etag).collect::<Vec<_>>(),
        sorted.iter().map(|part| &part.etag).collect::<Vec<_>>()
    );
    assert_eq!(
        listed.iter().map(|part| part.size).collect::<Vec<_>>(),
        vec![PART_SIZE as u64, PART_SIZE as u64, 50_000]
    );

    let pending = store.list_pending_uploads("mysql/").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].upload_id, upload_id);

    let outcome = store
        .complete_multipart(key, &upload_id, &parts, &PutOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.crc64, Some(crc64(&whole)));
    assert!(
        outcome
            .etag
            .as_deref()
            .is_some_and(|etag| etag.ends_with("-3"))
    );

    let stored = oss.object(BUCKET, key).expect("object completed");
    assert_eq!(stored.size, whole.len() as u64);
    assert_eq!(stored.crc64, crc64(&whole));
    assert_eq!(
        stored.metadata.get("crc64"),
        Some(&crc64(&whole).to_string())
    );
    assert_eq!(oss.read_object(BUCKET, key), Some(whole));
    assert!(oss.pending_uploads(BUCKET).is_empty());
    assert!(
        store
            .list_pending_uploads("mysql/")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn abort_of_finished_upload_counts_as_aborted() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let upload_id = store
        .create_multipart("k", &PutOptions::default())
        .await
        .unwrap();
    let part = store
        .upload_part("k", &upload_id, 1, Bytes::from_static(b"only part"))
        .await
        .unwrap();
    store
        .complete_multipart("k", &upload_id, &[part], &PutOptions::default())
        .await
        .unwrap();

    store.abort_multipart("k", &upload_id).await.unwrap();
    assert_eq!(
        oss.read_object(BUCKET, "k").as_deref(),
        Some(&b"only part"[..])
    );
}

#[tokio::test]
async fn pending_uploads_list_awkward_keys_unchanged() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let keys = ["mysql/a b+c/备份$1.gz", "mysql/100%/x&y<z>.gz", "other/k"];
    for key in keys {
        store
            .create_multipart(key, &PutOptions::default())
            .await
            .unwrap();
    }

    let mut listed: Vec<String> = store
        .list_pending_uploads("mysql/")
        .await
        .unwrap()
        .into_iter()
        .map(|upload| upload.key)
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            "mysql/100%/x&y<z>.gz".to_string(),
            "mysql/a b+c/备份$1.gz".to_string()
        ]
    );
    assert_eq!(store.list_pending_uploads("").await.unwrap().len(), 3);
}

#[tokio::test]
async fn abort_removes_pending_upload() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let upload_id = store
        .create_multipart("k", &PutOptions::default())
        .await
        .unwrap();
    store
        .upload_part("k", &upload_id, 1, Bytes::from(pattern(1000, 9)))
        .await
        .unwrap();

    store.abort_multipart("k", &upload_id).await.unwrap();
    assert!(oss.pending_uploads(BUCKET).is_empty());
    assert!(oss.object(BUCKET, "k").is_none());
}

#[tokio::test]
async fn upload_part_to_unknown_upload_fails() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let error = store
        .upload_part("k", "no-such-upload-id", 1, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NoSuchUpload);
    assert!(error.message.contains("no-such-upload-id"));
}

#[tokio::test]
async fn initiate_forbidding_overwrite_of_existing_key() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    oss.put_object_direct(BUCKET, "taken", b"existing", &[])
        .unwrap();
    let options = PutOptions {
        forbid_overwrite: true,
        ..PutOptions::default()
    };

    let error = store.create_multipart("taken", &options).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert!(oss.pending_uploads(BUCKET).is_empty());
}

#[tokio::test]
async fn complete_after_concurrent_write_is_already_exists() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let options = PutOptions {
        forbid_overwrite: true,
        ..PutOptions::default()
    };
    let upload_id = store.create_multipart("raced", &options).await.unwrap();
    let part = store
        .upload_part("raced", &upload_id, 1, Bytes::from_static(b"new"))
        .await
        .unwrap();

    // Another delivery of the same copy finishes first.
    oss.put_object_direct(BUCKET, "raced", b"existing", &[])
        .unwrap();

    let error = store
        .complete_multipart("raced", &upload_id, &[part], &options)
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert_eq!(error.code.as_deref(), Some("FileAlreadyExists"));
    assert_eq!(
        oss.read_object(BUCKET, "raced").as_deref(),
        Some(&b"existing"[..])
    );
}

#[tokio::test]
async fn complete_rejects_duplicate_part_numbers() {
    let oss = start_fake().await;
    let store = standard_store(&oss);
    let part = UploadedPart {
        part_number: 1,
        etag: "A".into(),
        size: 1,
        crc64: None,
    };
    let error = store
        .complete_multipart("k", "U", &[part.clone(), part], &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent);
    assert!(oss.request_log().is_empty());
}
