//! The XML bodies that OSS sends and takes: error replies, multipart results and listings, and
//! the CompleteMultipartUpload part list.

use quick_xml::escape::escape;
use serde::Deserialize;

use crate::storage::UploadedPart;

/// An OSS error reply: `<Error><Code/><Message/><RequestId/><HostId/></Error>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorReply {
    #[serde(rename = "Code")]
    pub code: Option<String>,
    #[serde(rename = "Message")]
    pub message: Option<String>,
    #[serde(rename = "RequestId")]
    pub request_id: Option<String>,
    #[serde(rename = "HostId")]
    pub host_id: Option<String>,
    /// The OSS error code detail (EC), such as `0002-00000040`, when the reply has one.
    #[serde(rename = "EC")]
    pub ec: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InitiateMultipartUploadResult {
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CompleteMultipartUploadResult {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

/// The reply of CopyObject; its presence tells the copy succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CopyObjectResult {
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListPartsResult {
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextPartNumberMarker")]
    pub next_part_number_marker: Option<String>,
    #[serde(rename = "Part", default)]
    pub parts: Vec<ListedPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "Size")]
    pub size: u64,
    /// CRC-64/XZ of the part in decimal, when OSS lists one.
    #[serde(rename = "HashCrc64ecma")]
    pub crc64: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListMultipartUploadsResult {
    /// `url` when the keys and key markers are URL-encoded.
    #[serde(rename = "EncodingType")]
    pub encoding_type: Option<String>,
    #[serde(rename = "IsTruncated", default)]
    pub is_truncated: bool,
    #[serde(rename = "NextKeyMarker")]
    pub next_key_marker: Option<String>,
    #[serde(rename = "NextUploadIdMarker")]
    pub next_upload_id_marker: Option<String>,
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<ListedUpload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedUpload {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

/// Parses one of the reply types above.
pub fn parse<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, quick_xml::DeError> {
    quick_xml::de::from_str(text)
}

/// Builds the CompleteMultipartUpload body from parts already in ascending order. OSS lists
/// ETags with their quotes, so the quotes are put back here.
pub fn complete_multipart_body(parts: &[UploadedPart]) -> String {
    let mut body =
        String::from(r#"<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>"#);
    for part in parts {
        let etag = format!("\"{}\"", unquote(&part.etag));
        body.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
            part.part_number,
            escape(etag.as_str())
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// Removes the double quotes around an ETag, as [`crate::storage::ObjectInfo`] stores it.
pub fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_reply_with_every_field() {
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match the signature you provided.</Message>
  <RequestId>65F1A2B3C4D5E6F7A8B9C0D1</RequestId>
  <HostId>bucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <EC>0002-00000040</EC>
</Error>"#;
        let reply: ErrorReply = parse(text).unwrap();
        assert_eq!(reply.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert!(reply.message.unwrap().starts_with("The request signature"));
        assert_eq!(
            reply.request_id.as_deref(),
            Some("65F1A2B3C4D5E6F7A8B9C0D1")
        );
        assert_eq!(
            reply.host_id.as_deref(),
            Some("bucket.oss-cn-hangzhou.aliyuncs.com")
        );
        assert_eq!(reply.ec.as_deref(), Some("0002-00000040"));
    }

    #[test]
    fn parses_error_reply_without_optional_fields() {
        let reply: ErrorReply = parse("<Error><Code>NoSuchKey</Code></Error>").unwrap();
        assert_eq!(reply.code.as_deref(), Some("NoSuchKey"));
        assert_eq!(reply.message, None);
        assert_eq!(reply.request_id, None);
    }

    #[test]
    fn rejects_text_that_is_not_xml() {
        assert!(parse::<ErrorReply>("<html><body>502 Bad Gateway").is_err());
    }

    #[test]
    fn parses_initiate_and_complete_results() {
        let initiate: InitiateMultipartUploadResult = parse(
            "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>0004B9894A22E5B1888A1E29F823****</UploadId></InitiateMultipartUploadResult>",
        )
        .unwrap();
        assert_eq!(initiate.upload_id, "0004B9894A22E5B1888A1E29F823****");

        let complete: CompleteMultipartUploadResult = parse(
            "<CompleteMultipartUploadResult><Location>http://b.oss-cn-hangzhou.aliyuncs.com/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;097DE458AD02B5F89F9D0530231876C4-3&quot;</ETag></CompleteMultipartUploadResult>",
        )
        .unwrap();
        assert_eq!(
            complete.etag.as_deref(),
            Some("\"097DE458AD02B5F89F9D0530231876C4-3\"")
        );
    }

    #[test]
    fn parses_list_parts_page() {
        let text = r#"<ListPartsResult>
  <Bucket>b</Bucket><Key>k</Key><UploadId>U1</UploadId>
  <NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>
  <Part><PartNumber>1</PartNumber><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"AAA"</ETag><HashCrc64ecma>123</HashCrc64ecma><Size>102400</Size></Part>
  <Part><PartNumber>2</PartNumber><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"BBB"</ETag><Size>5</Size></Part>
</ListPartsResult>"#;
        let page: ListPartsResult = parse(text).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_part_number_marker.as_deref(), Some("2"));
        assert_eq!(page.parts.len(), 2);
        assert_eq!(page.parts[0].part_number, 1);
        assert_eq!(page.parts[0].etag, "\"AAA\"");
        assert_eq!(page.parts[0].size, 102400);
        assert_eq!(page.parts[0].crc64.as_deref(), Some("123"));
        assert_eq!(page.parts[1].crc64, None);
    }

    #[test]
    fn parses_empty_listings() {
        let parts: ListPartsResult =
            parse("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>").unwrap();
        assert!(parts.parts.is_empty());
        let uploads: ListMultipartUploadsResult =
            parse("<ListMultipartUploadsResult><Bucket>b</Bucket></ListMultipartUploadsResult>")
                .unwrap();
        assert!(!uploads.is_truncated);
        assert!(uploads.uploads.is_empty());
    }

    #[test]
    fn parses_list_multipart_uploads_page() {
        let text = r#"<ListMultipartUploadsResult>
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>mysql/b.gz</NextKeyMarker><NextUploadIdMarker>U2</NextUploadIdMarker>
  <Prefix>mysql/</Prefix><MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>mysql/a.gz</Key><UploadId>U1</UploadId><Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload>
  <Upload><Key>mysql/b.gz</Key><UploadId>U2</UploadId><Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload>
</ListMultipartUploadsResult>"#;
        let page: ListMultipartUploadsResult = parse(text).unwrap();
        assert!(page.is_truncated);
        assert_eq!(page.next_key_marker.as_deref(), Some("mysql/b.gz"));
        assert_eq!(page.next_upload_id_marker.as_deref(), Some("U2"));
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1].key, "mysql/b.gz");
        assert_eq!(page.uploads[1].upload_id, "U2");
    }

    #[test]
    fn complete_body_lists_quoted_etags_in_given_order() {
        let parts = [
            UploadedPart {
                part_number: 1,
                etag: "AAA".into(),
                size: 1,
                crc64: None,
            },
            UploadedPart {
                part_number: 2,
                etag: "\"BBB\"".into(),
                size: 1,
                crc64: None,
            },
        ];
        assert_eq!(
            complete_multipart_body(&parts),
            r#"<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;AAA&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;BBB&quot;</ETag></Part></CompleteMultipartUpload>"#
        );
    }

    #[test]
    fn unquote_strips_only_surrounding_quotes() {
        assert_eq!(unquote("\"ABC\""), "ABC");
        assert_eq!(unquote("ABC"), "ABC");
        assert_eq!(unquote("\"ABC"), "\"ABC");
    }
}
