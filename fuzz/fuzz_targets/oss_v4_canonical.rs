//! The OSS V4 canonical request and `Authorization` parser on arbitrary request parts. The input
//! is split at NUL bytes into method, bucket, key, then query and header pairs.
#![no_main]

use backup_bridge::oss::signer::{
    SignableRequest, canonical_request, normalized_additional_headers, parse_authorization,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_authorization(text);
    let mut parts = text.split('\0');
    let method = parts.next().unwrap_or("GET");
    let bucket = parts.next().filter(|bucket| !bucket.is_empty());
    let key = parts.next().filter(|key| !key.is_empty());
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
    let additional: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    let request = SignableRequest {
        method,
        bucket,
        key,
        query: &query,
        headers: &headers,
        additional_headers: &additional,
    };
    let first = canonical_request(&request);
    assert_eq!(
        first,
        canonical_request(&request),
        "canonicalisation is deterministic"
    );
    let names = normalized_additional_headers(&request);
    assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "{names:?}");
});
