//! Checksums used to verify copies: CRC-64/XZ (what OSS returns as `x-oss-hash-crc64ecma`) and
//! the base64 MD5 that OSS and S3 take as `Content-MD5`.

use base64::Engine;
use md5::{Digest, Md5};

/// Running CRC-64/XZ: reflected ECMA-182 polynomial, init and xorout all ones. OSS reports this
/// variant as an unsigned decimal string in `x-oss-hash-crc64ecma`.
#[derive(Clone)]
pub struct Crc64 {
    digest: crc64fast::Digest,
}

impl Crc64 {
    pub fn new() -> Self {
        Self {
            digest: crc64fast::Digest::new(),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.write(bytes);
    }

    /// Returns the CRC of everything written so far; more bytes may still follow.
    pub fn value(&self) -> u64 {
        self.digest.sum64()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// Computes the CRC-64/XZ of one buffer.
pub fn crc64(bytes: &[u8]) -> u64 {
    let mut crc = Crc64::new();
    crc.update(bytes);
    crc.value()
}

/// Parses the decimal form of a CRC-64 that OSS sends in `x-oss-hash-crc64ecma`.
pub fn parse_crc64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Returns the base64 MD5 digest of `bytes`, the form `Content-MD5` takes.
pub fn content_md5(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_the_xz_check_value() {
        assert_eq!(crc64(b"123456789"), 11051210869376104954);
    }

    #[test]
    fn crc64_of_empty_input_is_zero() {
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn crc64_streamed_in_pieces_equals_one_shot() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut crc = Crc64::new();
        for chunk in data.chunks(777) {
            crc.update(chunk);
        }
        assert_eq!(crc.value(), crc64(&data));
    }

    #[test]
    fn content_md5_matches_rfc1321_vector() {
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }

    #[test]
    fn parse_crc64_reads_decimal_header() {
        assert_eq!(
            parse_crc64("11051210869376104954"),
            Some(11051210869376104954)
        );
        assert_eq!(parse_crc64("not-a-number"), None);
    }
}
