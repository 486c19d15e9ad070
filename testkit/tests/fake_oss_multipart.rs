//! Multipart uploads against the fake OSS over real HTTP: the happy path, `x-oss-complete-all`,
//! and every rule OSS enforces at UploadPart and Complete.

mod fake_oss_support;

use backup_bridge::checksum::{content_md5, crc64};
use fake_oss_support::{
    BUCKET, SignedRequest, error_of, header, pattern, request, start, xml_value,
};
use testkit::fake_oss::FakeOss;

const PART: usize = 102_400;

async fn initiate(oss: &FakeOss, key: &str) -> String {
    let response = request(oss, "POST", key)
        .query("uploads", "")
        .header("x-oss-meta-origin", "s3")
        .send()
        .await;
    assert_eq!(response.status(), 200);
    let xml = response.text().await.expect("initiate reply");
    xml_value(&xml, "UploadId").expect("upload id in reply")
}

fn part_request<'a>(
    oss: &'a FakeOss,
    key: &str,
    upload_id: &str,
    number: &str,
    body: &[u8],
) -> SignedRequest<'a> {
    request(oss, "PUT", key)
        .query("partNumber", number)
        .query("uploadId", upload_id)
        .body(body.to_vec())
}

/// Uploads a part and returns its ETag.
async fn upload(oss: &FakeOss, key: &str, upload_id: &str, number: u32, body: &[u8]) -> String {
    let response = part_request(oss, key, upload_id, &number.to_string(), body)
        .send()
        .await;
    assert_eq!(response.status(), 200, "part {number} upload");
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        crc64(body).to_string()
    );
    header(&response, "etag")
}

fn part_list(parts: &[(u32, &str)]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

fn complete_request<'a>(
    oss: &'a FakeOss,
    key: &str,
    upload_id: &str,
    xml: String,
) -> SignedRequest<'a> {
    request(oss, "POST", key)
        .query("uploadId", upload_id)
        .body(xml)
}

#[tokio::test]
async fn multipart_upload_assembles_parts_in_order() {
    let oss = start().await;
    let key = "mysql/db.table/1/part-00000.gz.parquet";
    let parts = [pattern(PART, 1), pattern(PART + 10, 2), pattern(777, 3)];
    let whole: Vec<u8> = parts.concat();
    let upload_id = initiate(&oss, key).await;
    assert_eq!(
        oss.pending_uploads(BUCKET),
        vec![(key.to_string(), upload_id.clone())]
    );
    let mut etags = Vec::new();
    for (index, body) in parts.iter().enumerate() {
        etags.push(upload(&oss, key, &upload_id, index as u32 + 1, body).await);
    }

    let xml = part_list(&[(1, &etags[0]), (2, &etags[1]), (3, &etags[2])]);
    let response = complete_request(&oss, key, &upload_id, xml).send().await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "x-oss-hash-crc64ecma"),
        crc64(&whole).to_string()
    );
    let etag = header(&response, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with("-3\""),
        "multipart ETag {etag}"
    );
    let stored = oss.object(BUCKET, key).expect("object stored");
    assert_eq!(stored.size, whole.len() as u64);
    assert_eq!(stored.parts, Some(3));
    assert_eq!(
        stored.metadata.get("origin").map(String::as_str),
        Some("s3")
    );
    assert_eq!(oss.read_object(BUCKET, key), Some(whole));
    assert!(oss.pending_uploads(BUCKET).is_empty());
}

#[tokio::test]
async fn complete_all_header_uses_every_uploaded_part() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let first = pattern(PART, 4);
    let second = pattern(50, 5);
    upload(&oss, "k", &upload_id, 2, &second).await;
    upload(&oss, "k", &upload_id, 1, &first).await;

    let response = request(&oss, "POST", "k")
        .query("uploadId", &upload_id)
        .header("x-oss-complete-all", "yes")
        .send()
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(oss.read_object(BUCKET, "k"), Some([first, second].concat()));
}

#[tokio::test]
async fn complete_rejects_small_part_before_the_last() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let first = upload(&oss, "k", &upload_id, 1, &pattern(PART - 1, 1)).await;
    let second = upload(&oss, "k", &upload_id, 2, &pattern(10, 2)).await;

    let response = complete_request(
        &oss,
        "k",
        &upload_id,
        part_list(&[(1, &first), (2, &second)]),
    )
    .send()
    .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 400);
    assert_eq!(code, "EntityTooSmall");
    assert_eq!(
        oss.pending_uploads(BUCKET).len(),
        1,
        "a failed Complete leaves the upload open"
    );
}

#[tokio::test]
async fn complete_rejects_descending_parts() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let first = upload(&oss, "k", &upload_id, 1, &pattern(PART, 1)).await;
    let second = upload(&oss, "k", &upload_id, 2, &pattern(PART, 2)).await;

    let response = complete_request(
        &oss,
        "k",
        &upload_id,
        part_list(&[(2, &second), (1, &first)]),
    )
    .send()
    .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 400);
    assert_eq!(code, "InvalidPartOrder");
}

#[tokio::test]
async fn complete_rejects_unknown_part_and_wrong_etag() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let first = upload(&oss, "k", &upload_id, 1, &pattern(PART, 1)).await;

    let unknown = complete_request(
        &oss,
        "k",
        &upload_id,
        part_list(&[(1, &first), (2, &first)]),
    )
    .send()
    .await;
    let wrong_etag = complete_request(
        &oss,
        "k",
        &upload_id,
        part_list(&[(1, "\"00000000000000000000000000000000\"")]),
    )
    .send()
    .await;

    let (status, code, _) = error_of(unknown).await;
    assert_eq!(status, 400);
    assert_eq!(code, "InvalidPart");
    let (status, code, _) = error_of(wrong_etag).await;
    assert_eq!(status, 400);
    assert_eq!(code, "InvalidPart");
}

#[tokio::test]
async fn complete_with_forbid_overwrite_on_existing_key_conflicts() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let etag = upload(&oss, "k", &upload_id, 1, b"new").await;
    oss.put_object_direct(BUCKET, "k", b"old", &[])
        .expect("seeded");

    let response = complete_request(&oss, "k", &upload_id, part_list(&[(1, &etag)]))
        .header("x-oss-forbid-overwrite", "true")
        .send()
        .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 409);
    assert_eq!(code, "FileAlreadyExists");
    assert_eq!(oss.read_object(BUCKET, "k"), Some(b"old".to_vec()));
}

#[tokio::test]
async fn completed_upload_id_is_no_such_upload() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let etag = upload(&oss, "k", &upload_id, 1, b"x").await;
    let first = complete_request(&oss, "k", &upload_id, part_list(&[(1, &etag)]))
        .send()
        .await;
    assert_eq!(first.status(), 200);

    let again = complete_request(&oss, "k", &upload_id, part_list(&[(1, &etag)]))
        .send()
        .await;
    let (status, code, _) = error_of(again).await;

    assert_eq!(status, 404);
    assert_eq!(code, "NoSuchUpload");
}

#[tokio::test]
async fn part_to_unknown_upload_is_no_such_upload() {
    let oss = start().await;

    let (status, code, _) = error_of(
        part_request(&oss, "k", "0123456789ABCDEF", "1", b"x")
            .send()
            .await,
    )
    .await;

    assert_eq!(status, 404);
    assert_eq!(code, "NoSuchUpload");
}

#[tokio::test]
async fn part_numbers_outside_range_are_invalid_argument() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;

    for number in ["0", "10001", "-1", "x"] {
        let (status, code, _) = error_of(
            part_request(&oss, "k", &upload_id, number, b"x")
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 400, "part number {number}");
        assert_eq!(code, "InvalidArgument", "part number {number}");
    }
    let last = part_request(&oss, "k", &upload_id, "10000", b"x")
        .send()
        .await;
    assert_eq!(last.status(), 200);
}

#[tokio::test]
async fn part_with_wrong_content_md5_is_invalid_digest() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;

    let response = part_request(&oss, "k", &upload_id, "1", b"x")
        .header("content-md5", &content_md5(b"y"))
        .send()
        .await;
    let (status, code, _) = error_of(response).await;

    assert_eq!(status, 400);
    assert_eq!(code, "InvalidDigest");
}

#[tokio::test]
async fn abort_removes_upload() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    upload(&oss, "k", &upload_id, 1, b"x").await;

    let response = request(&oss, "DELETE", "k")
        .query("uploadId", &upload_id)
        .send()
        .await;
    assert_eq!(response.status(), 204);
    assert!(oss.pending_uploads(BUCKET).is_empty());

    let again = request(&oss, "DELETE", "k")
        .query("uploadId", &upload_id)
        .send()
        .await;
    let (status, code, _) = error_of(again).await;
    assert_eq!(status, 404);
    assert_eq!(code, "NoSuchUpload");
}

#[tokio::test]
async fn list_parts_reports_sizes_etags_and_crcs() {
    let oss = start().await;
    let upload_id = initiate(&oss, "k").await;
    let body = pattern(PART, 8);
    let etag = upload(&oss, "k", &upload_id, 1, &body).await;
    upload(&oss, "k", &upload_id, 2, b"tail").await;

    let response = request(&oss, "GET", "k")
        .query("uploadId", &upload_id)
        .query("max-parts", "1")
        .send()
        .await;

    assert_eq!(response.status(), 200);
    let xml = response.text().await.expect("list reply");
    assert_eq!(xml_value(&xml, "PartNumber").as_deref(), Some("1"));
    assert_eq!(xml_value(&xml, "ETag"), Some(etag));
    assert_eq!(xml_value(&xml, "Size"), Some(PART.to_string()));
    assert_eq!(
        xml_value(&xml, "HashCrc64ecma"),
        Some(crc64(&body).to_string())
    );
    assert_eq!(xml_value(&xml, "IsTruncated").as_deref(), Some("true"));
    assert_eq!(
        xml_value(&xml, "NextPartNumberMarker").as_deref(),
        Some("1")
    );
}

#[tokio::test]
async fn list_uploads_filters_by_prefix() {
    let oss = start().await;
    let matching = initiate(&oss, "mysql/a").await;
    initiate(&oss, "other/b").await;

    let mut list = request(&oss, "GET", "")
        .query("uploads", "")
        .query("prefix", "mysql/");
    list.key = String::new();
    let response = list.send().await;

    assert_eq!(response.status(), 200);
    let xml = response.text().await.expect("list reply");
    assert_eq!(xml.matches("<Upload>").count(), 1, "reply {xml}");
    assert_eq!(xml_value(&xml, "Key").as_deref(), Some("mysql/a"));
    assert_eq!(xml_value(&xml, "UploadId"), Some(matching));
}
