//! Multipart operations: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload (XML part
//! list or `x-oss-complete-all: yes`) and AbortMultipartUpload. The list operations are in `listing`.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;

use super::objects::{incomplete_body, invalid_digest, parse_content_md5};
use super::router::Context;
use super::store::{Part, StoredObject, Upload, concatenate, multipart_etag, remove_file};
use super::xml::{OssError, XML_HEADER, element, encode_key, xml_response};

/// OSS accepts part numbers 1 to 10000.
const PART_NUMBERS: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Every part but the last must contain at least 100 KB (102400 bytes) when the upload completes.
const MIN_PART_SIZE: u64 = 102_400;
/// Upper bound for a CompleteMultipartUpload XML body; 10000 parts fit well within it.
const MAX_COMPLETE_BODY: usize = 4 * 1024 * 1024;

pub(crate) fn url_encoding(context: &Context) -> bool {
    context.query("encoding-type") == Some("url")
}

pub(crate) fn encoding_element(context: &Context) -> String {
    if url_encoding(context) {
        element("EncodingType", "url")
    } else {
        String::new()
    }
}

pub(crate) fn upload_id(context: &Context) -> Result<String, OssError> {
    context
        .query("uploadId")
        .map(str::to_string)
        .ok_or_else(|| OssError::invalid_argument("missing uploadId query parameter"))
}

/// Returns the upload when it exists for this bucket and key and no Complete is assembling it.
pub(crate) fn open_upload<'a>(
    uploads: &'a mut std::collections::HashMap<String, Upload>,
    context: &Context,
    upload_id: &str,
) -> Result<&'a mut Upload, OssError> {
    uploads
        .get_mut(upload_id)
        .filter(|upload| {
            upload.bucket == context.bucket && upload.key == context.key && !upload.completing
        })
        .ok_or_else(|| OssError::no_such_upload(upload_id))
}

pub(crate) fn initiate(context: &Context) -> Result<Response, OssError> {
    let mut state = context.shared.store.lock();
    if context.forbids_overwrite()
        && state
            .objects
            .contains_key(&(context.bucket.clone(), context.key.clone()))
    {
        return Err(OssError::file_already_exists());
    }
    let upload_id = hex::encode_upper(rand::random::<[u8; 16]>());
    state.uploads.insert(
        upload_id.clone(),
        Upload {
            bucket: context.bucket.clone(),
            key: context.key.clone(),
            initiated: Utc::now(),
            content_type: context
                .header("content-type")
                .unwrap_or("application/octet-stream")
                .to_string(),
            metadata: context.user_metadata(),
            parts: Default::default(),
            completing: false,
        },
    );
    drop(state);
    Ok(xml_response(format!(
        "{XML_HEADER}<InitiateMultipartUploadResult>{}{}{}{}</InitiateMultipartUploadResult>\n",
        encoding_element(context),
        element("Bucket", &context.bucket),
        element("Key", &encode_key(&context.key, url_encoding(context))),
        element("UploadId", &upload_id)
    )))
}

pub(crate) async fn upload_part(context: &Context, body: Body) -> Result<Response, OssError> {
    let upload_id = upload_id(context)?;
    let part_text = context.query("partNumber").unwrap_or("");
    let part_number = part_text
        .parse::<u32>()
        .ok()
        .filter(|number| PART_NUMBERS.contains(number))
        .ok_or_else(|| {
            OssError::invalid_argument(format!(
                "invalid partNumber {part_text}: part numbers run from 1 to 10000"
            ))
        })?;
    open_upload(
        &mut context.shared.store.lock().uploads,
        context,
        &upload_id,
    )?;
    let expected_md5 = parse_content_md5(context)?;

    let written = context
        .shared
        .store
        .write_body(body)
        .await
        .map_err(incomplete_body)?;
    if let Some(expected) = expected_md5
        && expected != written.md5
    {
        remove_file(&written.path);
        return Err(invalid_digest("The Content-MD5 you specified was invalid."));
    }
    let part = Part {
        size: written.size,
        md5: written.md5,
        crc64: written.crc64,
        last_modified: Utc::now(),
        path: written.path,
    };
    let reply = Response::builder()
        .status(StatusCode::OK)
        .header("etag", part.etag())
        .header("x-oss-hash-crc64ecma", part.crc64.to_string())
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(part.md5),
        );

    let mut state = context.shared.store.lock();
    let upload = match open_upload(&mut state.uploads, context, &upload_id) {
        Ok(upload) => upload,
        Err(error) => {
            drop(state);
            remove_file(&part.path);
            return Err(error);
        }
    };
    if let Some(previous) = upload.parts.insert(part_number, part) {
        remove_file(&previous.path);
    }
    drop(state);
    reply
        .body(Body::empty())
        .map_err(|error| OssError::internal(error.to_string()))
}

#[derive(Debug, Deserialize)]
struct CompleteRequest {
    #[serde(rename = "Part", default)]
    parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
struct CompletePart {
    #[serde(rename = "PartNumber")]
    part_number: u32,
    #[serde(rename = "ETag")]
    etag: String,
}

fn invalid_part(message: String) -> OssError {
    OssError::new(StatusCode::BAD_REQUEST, "InvalidPart", message)
}

/// Picks the parts a Complete request names, checking order, existence and ETags.
fn select_parts(
    upload: &Upload,
    complete_all: bool,
    xml: &[u8],
) -> Result<Vec<(u32, Part)>, OssError> {
    if complete_all {
        if !xml.iter().all(u8::is_ascii_whitespace) {
            return Err(OssError::invalid_argument(
                "x-oss-complete-all: yes takes an empty body, not a part list",
            ));
        }
        return Ok(upload
            .parts
            .iter()
            .map(|(number, part)| (*number, part.clone()))
            .collect());
    }
    let text = std::str::from_utf8(xml)
        .map_err(|_| OssError::malformed_xml("the part list is not UTF-8"))?;
    let request: CompleteRequest = quick_xml::de::from_str(text).map_err(|error| {
        OssError::malformed_xml(format!("failed to parse the part list: {error}"))
    })?;
    if request.parts.is_empty() {
        return Err(OssError::malformed_xml("the part list names no parts"));
    }
    if request
        .parts
        .windows(2)
        .any(|pair| pair[0].part_number >= pair[1].part_number)
    {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        ));
    }
    let mut selected = Vec::with_capacity(request.parts.len());
    for requested in &request.parts {
        let part = upload.parts.get(&requested.part_number).ok_or_else(|| {
            invalid_part(format!("part {} was never uploaded", requested.part_number))
        })?;
        let sent = requested.etag.trim().trim_matches('"');
        if !sent.eq_ignore_ascii_case(part.etag().trim_matches('"')) {
            return Err(invalid_part(format!(
                "ETag {sent} does not match part {}",
                requested.part_number
            )));
        }
        selected.push((requested.part_number, part.clone()));
    }
    Ok(selected)
}

fn check_part_sizes(selected: &[(u32, Part)]) -> Result<(), OssError> {
    let Some((_, all_but_last)) = selected.split_last() else {
        return Ok(());
    };
    if let Some((number, part)) = all_but_last
        .iter()
        .find(|(_, part)| part.size < MIN_PART_SIZE)
    {
        return Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size.",
        )
        .with_detail("PartNumber", number.to_string())
        .with_detail("ProposedSize", part.size.to_string())
        .with_detail("MinSizeAllowed", MIN_PART_SIZE.to_string()));
    }
    Ok(())
}

pub(crate) async fn complete(context: &Context, body: Body) -> Result<Response, OssError> {
    let upload_id = upload_id(context)?;
    let xml = axum::body::to_bytes(body, MAX_COMPLETE_BODY)
        .await
        .map_err(|error| {
            OssError::invalid_argument(format!("failed to read the part list: {error}"))
        })?;
    let complete_all = context
        .header("x-oss-complete-all")
        .is_some_and(|value| value.eq_ignore_ascii_case("yes"));
    let object_key = (context.bucket.clone(), context.key.clone());

    let (selected, content_type, metadata) = {
        let mut state = context.shared.store.lock();
        let exists = state.objects.contains_key(&object_key);
        let upload = open_upload(&mut state.uploads, context, &upload_id)?;
        let selected = select_parts(upload, complete_all, &xml)?;
        check_part_sizes(&selected)?;
        if context.forbids_overwrite() && exists {
            return Err(OssError::file_already_exists());
        }
        upload.completing = true;
        (
            selected,
            upload.content_type.clone(),
            upload.metadata.clone(),
        )
    };

    let target = context.shared.store.new_file_path();
    let paths: Vec<_> = selected
        .iter()
        .map(|(_, part)| (part.path.clone(), part.size, part.crc64))
        .collect();
    let blocking_target = target.clone();
    let assembled =
        tokio::task::spawn_blocking(move || concatenate(&paths, &blocking_target)).await;
    let crc64 = match assembled {
        Ok(Ok(crc64)) => crc64,
        Ok(Err(error)) => {
            return Err(abandon_completion(
                context,
                &upload_id,
                &target,
                OssError::internal(format!("failed to assemble the parts: {error}")),
            ));
        }
        Err(error) => {
            return Err(abandon_completion(
                context,
                &upload_id,
                &target,
                OssError::internal(format!("part assembly task failed: {error}")),
            ));
        }
    };

    let md5s: Vec<[u8; 16]> = selected.iter().map(|(_, part)| part.md5).collect();
    let object = StoredObject {
        size: selected.iter().map(|(_, part)| part.size).sum(),
        crc64,
        etag: multipart_etag(&md5s),
        content_type,
        metadata,
        last_modified: Utc::now(),
        parts: Some(selected.len()),
        path: target.clone(),
    };

    let mut state = context.shared.store.lock();
    if !state.uploads.contains_key(&upload_id) {
        // Aborted while the parts were being assembled.
        drop(state);
        remove_file(&target);
        return Err(OssError::no_such_upload(&upload_id));
    }
    if context.forbids_overwrite() && state.objects.contains_key(&object_key) {
        drop(state);
        return Err(abandon_completion(
            context,
            &upload_id,
            &target,
            OssError::file_already_exists(),
        ));
    }
    let finished = state.uploads.remove(&upload_id);
    let etag = object.etag.clone();
    let previous = state.objects.insert(object_key, object);
    drop(state);
    for part in finished.iter().flat_map(|upload| upload.parts.values()) {
        remove_file(&part.path);
    }
    if let Some(previous) = previous {
        remove_file(&previous.path);
    }

    let xml = format!(
        "{XML_HEADER}<CompleteMultipartUploadResult>{}{}{}{}{}</CompleteMultipartUploadResult>\n",
        encoding_element(context),
        element(
            "Location",
            &format!(
                "http://{}.{}/{}",
                context.bucket,
                context.shared.endpoint_host(),
                encode_key(&context.key, true)
            )
        ),
        element("Bucket", &context.bucket),
        element("Key", &encode_key(&context.key, url_encoding(context))),
        element("ETag", &etag)
    );
    let mut response = xml_response(xml);
    let headers = response.headers_mut();
    headers.insert(
        "etag",
        etag.parse()
            .map_err(|_| OssError::internal("invalid ETag header"))?,
    );
    headers.insert("x-oss-hash-crc64ecma", crc64.into());
    Ok(response)
}

/// Undoes a failed Complete: the assembled file goes and the upload accepts requests again.
fn abandon_completion(
    context: &Context,
    upload_id: &str,
    target: &std::path::Path,
    error: OssError,
) -> OssError {
    if let Some(upload) = context.shared.store.lock().uploads.get_mut(upload_id) {
        upload.completing = false;
    }
    remove_file(target);
    error
}

pub(crate) fn abort(context: &Context) -> Result<Response, OssError> {
    let upload_id = upload_id(context)?;
    let removed = {
        let mut state = context.shared.store.lock();
        let matches = state
            .uploads
            .get(&upload_id)
            .is_some_and(|upload| upload.bucket == context.bucket && upload.key == context.key);
        if !matches {
            return Err(OssError::no_such_upload(&upload_id));
        }
        state.uploads.remove(&upload_id)
    };
    for part in removed.iter().flat_map(|upload| upload.parts.values()) {
        remove_file(&part.path);
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .map_err(|error| OssError::internal(error.to_string()))
}
