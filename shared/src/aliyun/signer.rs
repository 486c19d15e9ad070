//! Aliyun OpenAPI signature V3 (`ACS3-HMAC-SHA256`), the default of the official SDKs.
//!
//! The canonical request is `METHOD\nPATH\nQUERY\nHEADERS\nSIGNED-HEADER-NAMES\nPAYLOAD-HASH`.
//! The query is sorted by name with names and values percent-encoded as RFC 3986 requires. The
//! headers are written as `name:value\n`, lowercase, trimmed and sorted. The string to sign is
//! `ACS3-HMAC-SHA256\n` followed by the hex SHA-256 of the canonical request, and the signature is
//! the hex HMAC-SHA256 of that string keyed with the AccessKey secret. The test reproduces the
//! vector of the Aliyun documentation page "V3 request body and signature mechanism".

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Characters that RFC 3986 leaves unreserved stay as they are; everything else is escaped, so a
/// space becomes `%20` and `*` becomes `%2A`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same set for the path, where `/` separates segments and is kept.
const RFC3986_PATH: &AsciiSet = &RFC3986.remove(b'/');

/// Encodes `text` as RFC 3986 requires: unreserved characters kept, the rest `%XX` in capitals.
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// Returns true for the headers that a client of ours signs: `host`, `content-type` and every
/// `x-acs-*` header. A server verifies whatever list the `SignedHeaders` field names instead.
pub fn is_signed_by_default(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "host" || name == "content-type" || name.starts_with("x-acs-")
}

/// The parts of a request that V3 signs.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    pub method: &'a str,
    /// The path, not encoded; `/` for RPC-style APIs.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    /// The headers to sign, names in any case. Every header in this list is signed.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body, as sent in `x-acs-content-sha256`.
    pub payload_hash: &'a str,
}

/// A canonical request and the `SignedHeaders` value that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    pub text: String,
    /// Lowercase header names joined by `;`, in the order they were signed.
    pub signed_headers: String,
}

/// Returns the hex SHA-256 of a request body, the value of `x-acs-content-sha256`.
pub fn hash_payload(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Formats the request time as `x-acs-date` takes it: ISO 8601 in UTC, `2023-10-26T10:22:32Z`.
pub fn format_date(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Builds the canonical request.
pub fn canonical_request(request: &SignableRequest<'_>) -> CanonicalRequest {
    let path = if request.path.is_empty() {
        "/".to_string()
    } else {
        utf8_percent_encode(request.path, RFC3986_PATH).to_string()
    };

    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");

    // A header sent twice is signed once, with its values sorted and joined by commas.
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    headers.sort();
    let mut merged: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers {
        match merged.last_mut() {
            Some((last, values)) if *last == name => values.push(value),
            _ => merged.push((name, vec![value])),
        }
    }
    let canonical_headers: String = merged
        .iter()
        .map(|(name, values)| format!("{name}:{}\n", values.join(",")))
        .collect();
    let signed_headers = merged
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method.to_ascii_uppercase(),
        path,
        query,
        canonical_headers,
        signed_headers,
        request.payload_hash
    );
    CanonicalRequest {
        text,
        signed_headers,
    }
}

/// Builds the string to sign from the canonical request text.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Computes the hex signature of `string_to_sign` with the AccessKey secret.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Returns the `Authorization` header value for `request`, whose headers must already include
/// `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256` and, with an STS token,
/// `x-acs-security-token`.
pub fn authorization(access_key_id: &str, secret: &str, request: &SignableRequest<'_>) -> String {
    let canonical = canonical_request(request);
    let signature = signature(secret, &string_to_sign(&canonical.text));
    format!(
        "{ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        canonical.signed_headers
    )
}

/// The fields of a V3 `Authorization` header, as a server reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    /// Lowercase header names in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`; returns `None` when the
/// header is not a well-formed V3 header.
pub fn parse_authorization(header: &str) -> Option<ParsedAuthorization> {
    let rest = header.trim().strip_prefix(ALGORITHM)?.trim_start();
    let mut access_key_id = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (name, value) = field.trim().split_once('=')?;
        match name {
            "Credential" => access_key_id = Some(value.to_string()),
            "SignedHeaders" => {
                signed_headers = Some(
                    value
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect(),
                )
            }
            "Signature" => signature = Some(value.to_string()),
            _ => return None,
        }
    }
    Some(ParsedAuthorization {
        access_key_id: access_key_id?,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    // Vector from the Aliyun documentation page "V3 request body and signature mechanism".
    #[test]
    fn reproduces_documentation_vector() {
        let payload_hash = hash_payload(b"");
        let headers = pairs(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", &payload_hash),
        ]);
        let query = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let request = SignableRequest {
            method: "POST",
            path: "/",
            query: &query,
            headers: &headers,
            payload_hash: &payload_hash,
        };

        let canonical = canonical_request(&request);
        assert_eq!(
            string_to_sign(&canonical.text),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            authorization("YourAccessKeyId", "YourAccessKeySecret", &request),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn percent_encode_follows_rfc3986() {
        assert_eq!(percent_encode("a b*c~d+e/f:g"), "a%20b%2Ac~d%2Be%2Ff%3Ag");
        assert_eq!(percent_encode("备份"), "%E5%A4%87%E4%BB%BD");
    }

    #[test]
    fn canonical_query_sorts_encoded_names() {
        let query = pairs(&[
            ("StartTime", "2024-01-01T00:00Z"),
            ("DBInstanceId", "rm-1"),
            ("PageSize", "30"),
        ]);
        let request = SignableRequest {
            method: "post",
            path: "/",
            query: &query,
            headers: &[],
            payload_hash: "h",
        };
        let canonical = canonical_request(&request);
        assert_eq!(
            canonical.text,
            "POST\n/\nDBInstanceId=rm-1&PageSize=30&StartTime=2024-01-01T00%3A00Z\n\n\nh"
        );
    }

    #[test]
    fn repeated_headers_are_signed_once_with_sorted_values() {
        let headers = pairs(&[("X-Acs-Tag", " b "), ("x-acs-tag", "a"), ("Host", "h")]);
        let request = SignableRequest {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            payload_hash: "p",
        };
        let canonical = canonical_request(&request);
        assert_eq!(canonical.signed_headers, "host;x-acs-tag");
        assert!(canonical.text.contains("host:h\nx-acs-tag:a,b\n"));
    }

    #[test]
    fn default_signed_headers_are_host_content_type_and_acs() {
        assert!(is_signed_by_default("Host"));
        assert!(is_signed_by_default("content-type"));
        assert!(is_signed_by_default("x-acs-security-token"));
        assert!(!is_signed_by_default("user-agent"));
        assert!(!is_signed_by_default("authorization"));
    }

    #[test]
    fn parse_authorization_reads_every_field() {
        let parsed = parse_authorization(
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host;x-acs-date,Signature=abc",
        )
        .unwrap();
        assert_eq!(parsed.access_key_id, "ak");
        assert_eq!(parsed.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(parsed.signature, "abc");
    }

    #[test]
    fn parse_authorization_rejects_other_schemes() {
        assert_eq!(parse_authorization("acs ak:signature"), None);
        assert_eq!(
            parse_authorization("ACS3-HMAC-SHA256 Credential=ak,Signature=abc"),
            None
        );
    }
}
