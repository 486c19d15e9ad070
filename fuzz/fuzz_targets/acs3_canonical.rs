//! The Aliyun ACS3-HMAC-SHA256 canonical request and `Authorization` parser on arbitrary request
//! parts. The input is split at NUL bytes into method, path, then query and header pairs.
#![no_main]

use backup_bridge::aliyun::signer::{
    SignableRequest, canonical_request, hash_payload, parse_authorization,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_authorization(text);
    let mut parts = text.split('\0');
    let method = parts.next().unwrap_or("POST");
    let path = parts.next().unwrap_or("/");
    let rest: Vec<&str> = parts.collect();
    let pairs = |chunk: &[&str]| -> Vec<(String, String)> {
        chunk
            .chunks(2)
            .map(|pair| (pair[0].to_string(), pair.get(1).unwrap_or(&"").to_string()))
            .collect()
    };
    let middle = rest.len() / 2;
    let query = pairs(&rest[..middle]);
    let headers = pairs(&rest[middle..]);
    let payload_hash = hash_payload(data);
    let request = SignableRequest {
        method,
        path,
        query: &query,
        headers: &headers,
        payload_hash: &payload_hash,
    };
    let canonical = canonical_request(&request);
    assert_eq!(
        canonical,
        canonical_request(&request),
        "canonicalisation is deterministic"
    );
    let signed: Vec<&str> = canonical.signed_headers.split(';').collect();
    assert!(
        signed.iter().all(|name| *name == name.to_ascii_lowercase()),
        "{signed:?}"
    );
});
