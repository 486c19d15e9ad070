//! Request authentication as OSS does it: V4 `Authorization` headers checked with the signer of
//! `backup_bridge::oss::signer`, and V1 query-signed URLs (the presigned download links that
//! Aliyun RDS hands out for backup files).

use axum::http::{HeaderMap, Method};
use backup_bridge::oss::signer::{self, SignableRequest};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::FakeOssConfig;
use super::xml::OssError;

/// OSS rejects a request whose `x-oss-date` is further than this from its own clock.
const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(15);

/// Query parameters that V1 signs as part of the canonical resource.
const V1_SUBRESOURCES: &[&str] = &[
    "acl",
    "partNumber",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "security-token",
    "uploadId",
    "uploads",
    "x-oss-process",
];

/// The parts of a request that authentication looks at.
pub(crate) struct RequestToCheck<'a> {
    pub method: &'a Method,
    pub bucket: &'a str,
    pub key: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
}

/// Authentication method that a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthKind {
    HeaderV4,
    PresignedV1,
}

/// Authenticates a request by its V1 query signature or its V4 `Authorization` header.
pub(crate) fn authenticate(
    config: &FakeOssConfig,
    request: &RequestToCheck<'_>,
    now: DateTime<Utc>,
) -> Result<AuthKind, OssError> {
    let has_query = |name: &str| request.query.iter().any(|(key, _)| key == name);
    if has_query("OSSAccessKeyId") || has_query("Signature") {
        verify_presigned_v1(config, request, now)?;
        return Ok(AuthKind::PresignedV1);
    }
    if has_query("x-oss-signature-version") {
        // NOTE: V4 query signatures are not implemented; our clients presign nothing themselves.
        return Err(OssError::access_denied(
            "the fake OSS does not verify V4 query signatures",
        ));
    }
    verify_header_v4(config, request, now)?;
    Ok(AuthKind::HeaderV4)
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn verify_header_v4(
    config: &FakeOssConfig,
    request: &RequestToCheck<'_>,
    now: DateTime<Utc>,
) -> Result<(), OssError> {
    let Some(authorization) = header(request.headers, "authorization") else {
        return Err(OssError::access_denied(
            "anonymous access is not allowed: sign the request with OSS4-HMAC-SHA256",
        ));
    };
    if !authorization.starts_with(signer::ALGORITHM) {
        return Err(OssError::access_denied(
            "the fake OSS accepts only OSS4-HMAC-SHA256 signatures",
        ));
    }
    let parsed = signer::parse_authorization(authorization).ok_or_else(|| {
        OssError::invalid_argument(format!("malformed Authorization header: {authorization}"))
    })?;
    if parsed.access_key_id != config.access_key_id {
        return Err(OssError::new(
            axum::http::StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .with_detail("OSSAccessKeyId", parsed.access_key_id));
    }

    let date_text = header(request.headers, "x-oss-date").ok_or_else(|| {
        OssError::signature_mismatch(
            "missing x-oss-date header: V4 requests must carry their signing time",
        )
    })?;
    let time = NaiveDateTime::parse_from_str(date_text, "%Y%m%dT%H%M%SZ")
        .map(|naive| naive.and_utc())
        .map_err(|_| {
            OssError::signature_mismatch(format!(
                "invalid x-oss-date {date_text}: expected the form 20250411T064124Z"
            ))
        })?;
    if (now - time).abs() > MAX_CLOCK_SKEW {
        return Err(OssError::new(
            axum::http::StatusCode::FORBIDDEN,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )
        .with_detail("RequestTime", date_text)
        .with_detail("ServerTime", signer::format_time(now)));
    }
    if parsed.date != time.format("%Y%m%d").to_string() {
        return Err(OssError::signature_mismatch(format!(
            "credential scope date {} differs from the date of x-oss-date {date_text}",
            parsed.date
        )));
    }
    if parsed.region != config.region {
        return Err(OssError::signature_mismatch(format!(
            "credential scope region {} is not the region of this endpoint, {}",
            parsed.region, config.region
        )));
    }
    let token = header(request.headers, "x-oss-security-token");
    match (&config.security_token, token) {
        (Some(expected), Some(sent)) if expected == sent => {}
        (Some(_), _) => {
            return Err(OssError::signature_mismatch(
                "missing or wrong x-oss-security-token for temporary credentials",
            ));
        }
        (None, Some(_)) => {
            return Err(OssError::signature_mismatch(
                "x-oss-security-token sent but these credentials are not temporary",
            ));
        }
        (None, None) => {}
    }

    let headers = header_pairs(request.headers);
    let signable = SignableRequest {
        method: request.method.as_str(),
        bucket: Some(request.bucket),
        key: if request.key.is_empty() {
            None
        } else {
            Some(request.key)
        },
        query: request.query,
        headers: &headers,
        additional_headers: &parsed.additional_headers,
    };
    let canonical = signer::canonical_request(&signable);
    let string_to_sign = signer::string_to_sign(&canonical, time, &parsed.region);
    let expected = signer::signature(
        &config.access_key_secret,
        time,
        &parsed.region,
        &string_to_sign,
    );
    if expected != parsed.signature {
        return Err(OssError::signature_mismatch("The request signature we calculated does not match the signature you provided. Check your key and signing method.")
            .with_detail("OSSAccessKeyId", &config.access_key_id)
            .with_detail("CanonicalRequest", canonical)
            .with_detail("StringToSign", string_to_sign));
    }
    Ok(())
}

/// Builds the V1 string to sign: verb, `Content-MD5`, `Content-Type`, expiry, the `x-oss-*`
/// headers and the canonical resource `/bucket/key?subresources`.
pub(crate) fn v1_string_to_sign(
    method: &str,
    headers: &[(String, String)],
    expires: &str,
    bucket: &str,
    key: &str,
    query: &[(String, String)],
) -> String {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
            .unwrap_or("")
    };
    let mut oss_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .filter(|(name, _)| name.starts_with("x-oss-"))
        .collect();
    oss_headers.sort();
    let oss_headers: String = oss_headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();

    let mut subresources: Vec<&(String, String)> = query
        .iter()
        .filter(|(name, _)| V1_SUBRESOURCES.contains(&name.as_str()))
        .collect();
    subresources.sort();
    let mut resource = format!("/{bucket}/{key}");
    if !subresources.is_empty() {
        let joined = subresources
            .iter()
            .map(|(name, value)| {
                if value.is_empty() {
                    name.clone()
                } else {
                    format!("{name}={value}")
                }
            })
            .collect::<Vec<_>>()
            .join("&");
        resource.push('?');
        resource.push_str(&joined);
    }
    format!(
        "{method}\n{}\n{}\n{expires}\n{oss_headers}{resource}",
        find("content-md5"),
        find("content-type")
    )
}

/// Computes the V1 signature: base64 of HMAC-SHA1 keyed with the secret.
pub(crate) fn v1_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn verify_presigned_v1(
    config: &FakeOssConfig,
    request: &RequestToCheck<'_>,
    now: DateTime<Utc>,
) -> Result<(), OssError> {
    let query = |name: &str| {
        request
            .query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (Some(access_key_id), Some(signature), Some(expires)) = (
        query("OSSAccessKeyId"),
        query("Signature"),
        query("Expires"),
    ) else {
        return Err(OssError::access_denied(
            "a query-signed URL needs OSSAccessKeyId, Expires and Signature",
        ));
    };
    if access_key_id != config.access_key_id {
        return Err(OssError::new(
            axum::http::StatusCode::FORBIDDEN,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
        )
        .with_detail("OSSAccessKeyId", access_key_id));
    }
    let expires_at: i64 = expires.parse().map_err(|_| {
        OssError::invalid_argument(format!(
            "invalid Expires {expires}: expected seconds since the Unix epoch"
        ))
    })?;
    if expires_at < now.timestamp() {
        return Err(OssError::access_denied("Request has expired.")
            .with_detail("Expires", expires)
            .with_detail("ServerTime", now.to_rfc3339()));
    }
    if config.security_token.as_deref() != query("security-token") {
        return Err(OssError::signature_mismatch(
            "missing or wrong security-token for temporary credentials",
        ));
    }
    let headers = header_pairs(request.headers);
    let string_to_sign = v1_string_to_sign(
        request.method.as_str(),
        &headers,
        expires,
        request.bucket,
        request.key,
        request.query,
    );
    if v1_signature(&config.access_key_secret, &string_to_sign) != signature {
        return Err(OssError::signature_mismatch("The request signature we calculated does not match the signature you provided. Check your key and signing method.")
            .with_detail("StringToSign", string_to_sign));
    }
    Ok(())
}

/// Checks the payload headers that OSS rejects: a payload hash that is neither
/// `UNSIGNED-PAYLOAD` nor a hex SHA-256 (including every `STREAMING-*` value), and `aws-chunked`
/// content or transfer encodings, which OSS does not decode.
pub(crate) fn check_payload_headers(headers: &HeaderMap, auth: AuthKind) -> Result<(), OssError> {
    match header(headers, "x-oss-content-sha256") {
        Some(signer::UNSIGNED_PAYLOAD) => {}
        Some(value) if value.len() == 64 && value.bytes().all(|byte| byte.is_ascii_hexdigit()) => {}
        Some(value) => {
            return Err(OssError::invalid_argument(format!(
                "invalid x-oss-content-sha256 {value}: send UNSIGNED-PAYLOAD or the hex SHA-256 of the body"
            )));
        }
        None if auth == AuthKind::HeaderV4 => {
            return Err(OssError::invalid_argument(
                "missing x-oss-content-sha256: V4 requests must send UNSIGNED-PAYLOAD or the body SHA-256",
            ));
        }
        None => {}
    }
    for name in ["content-encoding", "transfer-encoding"] {
        for value in headers.get_all(name) {
            if String::from_utf8_lossy(value.as_bytes())
                .to_ascii_lowercase()
                .contains("aws-chunked")
            {
                return Err(OssError::invalid_argument(format!(
                    "{name}: aws-chunked is not supported: send the plain body"
                )));
            }
        }
    }
    Ok(())
}
