//! ListParts and ListMultipartUploads.

use axum::response::Response;
use chrono::Utc;

use super::multipart::{encoding_element, open_upload, upload_id, url_encoding};
use super::router::Context;
use super::store::Part;
use super::xml::{OssError, XML_HEADER, element, encode_key, iso_time, xml_response};

fn parse_limit(context: &Context, name: &str) -> Result<usize, OssError> {
    match context.query(name) {
        None => Ok(1000),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=1000).contains(limit))
            .ok_or_else(|| {
                OssError::invalid_argument(format!("invalid {name} {text}: expected 1 to 1000"))
            }),
    }
}

pub(crate) fn list_parts(context: &Context) -> Result<Response, OssError> {
    let upload_id = upload_id(context)?;
    let max_parts = parse_limit(context, "max-parts")?;
    let marker: u32 = context
        .query("part-number-marker")
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let parts: Vec<(u32, Part)> = {
        let mut state = context.shared.store.lock();
        let upload = open_upload(&mut state.uploads, context, &upload_id)?;
        upload
            .parts
            .range(marker + 1..)
            .map(|(number, part)| (*number, part.clone()))
            .collect()
    };
    let truncated = parts.len() > max_parts;
    let page = &parts[..parts.len().min(max_parts)];
    let next_marker = page.last().map_or(marker, |(number, _)| *number);

    let mut xml = format!(
        "{XML_HEADER}<ListPartsResult>{}{}{}{}{}{}{}{}\n",
        encoding_element(context),
        element("Bucket", &context.bucket),
        element("Key", &encode_key(&context.key, url_encoding(context))),
        element("UploadId", &upload_id),
        element("PartNumberMarker", &marker.to_string()),
        element("NextPartNumberMarker", &next_marker.to_string()),
        element("MaxParts", &max_parts.to_string()),
        element("IsTruncated", &truncated.to_string())
    );
    for (number, part) in page {
        xml.push_str(&format!(
            "<Part>{}{}{}{}{}</Part>\n",
            element("PartNumber", &number.to_string()),
            element("LastModified", &iso_time(part.last_modified)),
            element("ETag", &part.etag()),
            element("HashCrc64ecma", &part.crc64.to_string()),
            element("Size", &part.size.to_string())
        ));
    }
    xml.push_str("</ListPartsResult>\n");
    Ok(xml_response(xml))
}

pub(crate) fn list_uploads(context: &Context) -> Result<Response, OssError> {
    let max_uploads = parse_limit(context, "max-uploads")?;
    let prefix = context.query("prefix").unwrap_or("").to_string();
    let key_marker = context.query("key-marker").unwrap_or("").to_string();
    let id_marker = context.query("upload-id-marker").unwrap_or("").to_string();
    // NOTE: `delimiter` is ignored, so common prefixes are never grouped.
    let mut uploads: Vec<(String, String, chrono::DateTime<Utc>)> = context
        .shared
        .store
        .lock()
        .uploads
        .iter()
        .filter(|(_, upload)| upload.bucket == context.bucket && upload.key.starts_with(&prefix))
        .map(|(id, upload)| (upload.key.clone(), id.clone(), upload.initiated))
        .filter(|(key, id, _)| {
            if id_marker.is_empty() {
                key > &key_marker
            } else {
                (key, id) > (&key_marker, &id_marker)
            }
        })
        .collect();
    uploads.sort();
    let truncated = uploads.len() > max_uploads;
    uploads.truncate(max_uploads);
    let (next_key, next_id) = uploads
        .last()
        .map(|(key, id, _)| (key.clone(), id.clone()))
        .unwrap_or_default();

    let url = url_encoding(context);
    let mut xml = format!(
        "{XML_HEADER}<ListMultipartUploadsResult>{}{}{}{}{}{}{}{}{}\n",
        encoding_element(context),
        element("Bucket", &context.bucket),
        element("KeyMarker", &encode_key(&key_marker, url)),
        element("UploadIdMarker", &id_marker),
        element("NextKeyMarker", &encode_key(&next_key, url)),
        element("NextUploadIdMarker", &next_id),
        element("Prefix", &encode_key(&prefix, url)),
        element("MaxUploads", &max_uploads.to_string()),
        element("IsTruncated", &truncated.to_string())
    );
    for (key, id, initiated) in &uploads {
        xml.push_str(&format!(
            "<Upload>{}{}{}</Upload>\n",
            element("Key", &encode_key(key, url)),
            element("UploadId", id),
            element("Initiated", &iso_time(*initiated))
        ));
    }
    xml.push_str("</ListMultipartUploadsResult>\n");
    Ok(xml_response(xml))
}
