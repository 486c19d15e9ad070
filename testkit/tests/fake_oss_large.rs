//! Large bodies and concurrent requests: bodies stream through the fake without being built in
//! memory on either side, and racing Complete requests end with exactly one object.

mod fake_oss_support;

use backup_bridge::checksum::Crc64;
use bytes::Bytes;
use fake_oss_support::{BUCKET, error_of, header, pattern, request, start, xml_value};
use futures::StreamExt;

const MIB: usize = 1024 * 1024;

/// Builds a streamed body of `chunks` MiB and returns it with the CRC-64 it will have.
fn streamed_body(chunks: usize, seed: u8) -> (reqwest::Body, u64) {
    let chunk = Bytes::from(pattern(MIB, seed));
    let mut crc = Crc64::new();
    for _ in 0..chunks {
        crc.update(&chunk);
    }
    let stream =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    (reqwest::Body::wrap_stream(stream), crc.value())
}

#[tokio::test]
async fn large_object_streams_through_put_and_get() {
    let oss = start().await;
    let (body, expected_crc) = streamed_body(128, 11);

    let put = request(&oss, "PUT", "large/export.gz.parquet")
        .stream_body(body)
        .send()
        .await;
    assert_eq!(put.status(), 200);
    assert_eq!(
        header(&put, "x-oss-hash-crc64ecma"),
        expected_crc.to_string()
    );

    let get = request(&oss, "GET", "large/export.gz.parquet").send().await;
    assert_eq!(get.status(), 200);
    assert_eq!(header(&get, "content-length"), (128 * MIB).to_string());
    let mut crc = Crc64::new();
    let mut received = 0usize;
    let mut stream = get.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("body chunk");
        received += chunk.len();
        crc.update(&chunk);
    }
    assert_eq!(received, 128 * MIB);
    assert_eq!(crc.value(), expected_crc);
}

#[tokio::test]
async fn racing_completes_with_forbid_overwrite_store_one_object() {
    let oss = start().await;
    let mut uploads = Vec::new();
    for seed in [1u8, 2] {
        let reply = request(&oss, "POST", "race")
            .query("uploads", "")
            .send()
            .await
            .text()
            .await
            .expect("initiate reply");
        let upload_id = xml_value(&reply, "UploadId").expect("upload id");
        let (body, _) = streamed_body(8, seed);
        let part = request(&oss, "PUT", "race")
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .stream_body(body)
            .send()
            .await;
        assert_eq!(part.status(), 200);
        uploads.push((upload_id, header(&part, "etag")));
    }

    let completes = uploads.iter().map(|(upload_id, etag)| {
        let xml = format!("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>");
        request(&oss, "POST", "race").query("uploadId", upload_id).header("x-oss-forbid-overwrite", "true").body(xml).send()
    });
    let replies = futures::future::join_all(completes).await;

    let mut codes = Vec::new();
    for reply in replies {
        if reply.status() == 200 {
            codes.push("OK".to_string());
        } else {
            codes.push(error_of(reply).await.1);
        }
    }
    codes.sort();
    assert_eq!(
        codes,
        vec!["FileAlreadyExists".to_string(), "OK".to_string()]
    );
    assert_eq!(
        oss.object(BUCKET, "race").map(|object| object.size),
        Some(8 * MIB as u64)
    );
    assert_eq!(
        oss.pending_uploads(BUCKET).len(),
        1,
        "the losing upload stays open for the client to abort"
    );
}
