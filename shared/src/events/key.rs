//! Decoding of object keys in S3 event notifications.
//!
//! S3 sends keys form-encoded: `+` is a space, `%2B` a plus, and other bytes are UTF-8 percent
//! escapes. Characters S3 leaves alone, such as `$` in RDS export table names, pass through.

/// A key from an event that is not valid form encoding or not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object key {raw:?} in the S3 event: {reason}")]
pub struct InvalidKey {
    /// The key exactly as the event sent it.
    pub raw: String,
    pub reason: String,
}

/// Decodes a form-encoded key from an S3 event, exactly once.
///
/// # Errors
/// A `%` not followed by two hex digits, or escapes that do not form UTF-8, give [`InvalidKey`]
/// naming the raw key.
pub fn decode_s3_key(raw: &str) -> Result<String, InvalidKey> {
    let invalid = |reason: String| InvalidKey {
        raw: raw.to_string(),
        reason,
    };
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => {
                decoded.push(b' ');
                index += 1;
            }
            b'%' => {
                let escape = bytes.get(index + 1..index + 3);
                let value = escape
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .filter(|hex| hex.bytes().all(|byte| byte.is_ascii_hexdigit()))
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                let Some(value) = value else {
                    return Err(invalid(format!(
                        "'%' at byte {index} is not followed by two hex digits"
                    )));
                };
                decoded.push(value);
                index += 3;
            }
            other => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8(decoded)
        .map_err(|error| invalid(format!("escapes do not form UTF-8 ({error})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_key_table() {
        let cases = [
            ("mysql/plain/file.gz.parquet", "mysql/plain/file.gz.parquet"),
            ("mysql/with+space/a+b.csv", "mysql/with space/a b.csv"),
            ("mysql/plus%2Bsign", "mysql/plus+sign"),
            ("mysql/%E4%B8%AD%E6%96%87/%E8%A1%A8", "mysql/中文/表"),
            ("mysql/db.t%24archive/part", "mysql/db.t$archive/part"),
            ("mysql/db.t$archive/part", "mysql/db.t$archive/part"),
            ("mysql/percent%25/2B", "mysql/percent%/2B"),
            ("mysql/lower%2b", "mysql/lower+"),
            ("", ""),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                decode_s3_key(raw).as_deref(),
                Ok(expected),
                "raw key {raw:?}"
            );
        }
    }

    #[test]
    fn decodes_only_once() {
        // "%2525" is an encoded "%25", which must stay "%25" and not become "%".
        assert_eq!(decode_s3_key("a%2525b").as_deref(), Ok("a%25b"));
    }

    #[test]
    fn rejects_invalid_escapes() {
        for raw in [
            "mysql/bad%",
            "mysql/bad%2",
            "mysql/bad%zz",
            "mysql/bad%+1",
            "mysql/%E4%B8",
        ] {
            let error = decode_s3_key(raw).expect_err(raw);
            assert_eq!(error.raw, raw);
            assert!(error.to_string().contains(raw), "{error}");
        }
    }

    #[test]
    fn rejects_invalid_utf8() {
        let error = decode_s3_key("mysql/%FF%FE").expect_err("invalid UTF-8");
        assert!(error.reason.contains("UTF-8"), "{}", error.reason);
    }
}
