//! ACS3-HMAC-SHA256 verification as the RDS OpenAPI gateway does it: the signature over the
//! headers that `SignedHeaders` names, the request time within 15 minutes, and each nonce once.

use std::collections::HashSet;

use axum::http::HeaderMap;
use backup_bridge::aliyun::signer::{self, SignableRequest};
use chrono::{DateTime, TimeDelta, Utc};

use super::ApiError;

/// The credentials and clock limit that a request must match.
pub(super) struct Verifier<'a> {
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
    pub security_token: Option<&'a str>,
    pub max_clock_skew: TimeDelta,
}

/// The parts of an incoming request that the signature covers.
pub(super) struct IncomingRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Verifier<'_> {
    /// Checks the signature, the request time and the nonce; records the nonce when all pass.
    pub fn verify(
        &self,
        request: &IncomingRequest<'_>,
        seen_nonces: &mut HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
        };

        let authorization = header("authorization").ok_or_else(|| {
            ApiError::new(
                400,
                "MissingAuthorization",
                "Authorization header is missing.",
            )
        })?;
        let parsed = signer::parse_authorization(authorization).ok_or_else(|| {
            ApiError::new(
                400,
                "IncompleteSignature",
                "The request signature does not conform to Aliyun standards.",
            )
        })?;
        if parsed.access_key_id != self.access_key_id {
            return Err(ApiError::new(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        }
        if let Some(expected) = self.security_token
            && header("x-acs-security-token") != Some(expected)
        {
            return Err(ApiError::new(
                400,
                "InvalidSecurityToken.Mismatch",
                "Specified SecurityToken is invalid.",
            ));
        }

        let date_text = header("x-acs-date").ok_or_else(|| {
            ApiError::new(
                400,
                "MissingParameter.x-acs-date",
                "x-acs-date header is missing.",
            )
        })?;
        let date = DateTime::parse_from_rfc3339(date_text)
            .map_err(|_| {
                ApiError::new(
                    400,
                    "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted.",
                )
            })?
            .with_timezone(&Utc);
        if (now - date).abs() > self.max_clock_skew {
            return Err(ApiError::new(
                400,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }

        // The gateway requires these to be signed, so that a replay cannot change them.
        for required in [
            "host",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-action",
            "x-acs-version",
        ] {
            if !parsed.signed_headers.iter().any(|name| name == required) {
                return Err(signature_mismatch());
            }
        }
        let mut signed = Vec::new();
        for name in &parsed.signed_headers {
            let values: Vec<_> = request.headers.get_all(name.as_str()).iter().collect();
            if values.is_empty() {
                return Err(signature_mismatch());
            }
            for value in values {
                let value = value.to_str().map_err(|_| signature_mismatch())?;
                signed.push((name.clone(), value.to_string()));
            }
        }
        let payload_hash = signer::hash_payload(request.body);
        if header("x-acs-content-sha256").is_some_and(|claimed| claimed != payload_hash) {
            return Err(signature_mismatch());
        }
        let signable = SignableRequest {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: &signed,
            payload_hash: &payload_hash,
        };
        let canonical = signer::canonical_request(&signable);
        let expected = signer::signature(
            self.access_key_secret,
            &signer::string_to_sign(&canonical.text),
        );
        if expected != parsed.signature {
            return Err(signature_mismatch());
        }

        let nonce = header("x-acs-signature-nonce")
            .unwrap_or_default()
            .to_string();
        if !seen_nonces.insert(nonce) {
            return Err(ApiError::new(
                400,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        Ok(())
    }
}

fn signature_mismatch() -> ApiError {
    ApiError::new(
        400,
        "SignatureDoesNotMatch",
        "Specified signature does not match our calculation.",
    )
}
