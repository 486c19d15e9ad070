//! S3 event notifications (as delivered to Lambda) parsed into records with decoded keys.

use aws_lambda_events::s3::{S3Event, S3EventRecord};

use super::key::{InvalidKey, decode_s3_key};

/// One object named by an S3 notification record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ObjectRecord {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Orders events for the same key; S3 compares them as hex strings of equal length.
    pub sequencer: Option<String>,
    /// The event name without the `s3:` prefix, e.g. `ObjectCreated:CompleteMultipartUpload`.
    pub event_name: String,
}

impl S3ObjectRecord {
    /// Returns true for every `ObjectCreated:*` event (Put, Post, Copy, CompleteMultipartUpload).
    pub fn is_object_created(&self) -> bool {
        self.event_name.starts_with("ObjectCreated:")
    }
}

/// The longest object key S3 accepts, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 1024;

/// A parsed notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Notification {
    /// The `s3:TestEvent` message S3 sends when notifications are configured; it names no object.
    TestEvent,
    /// One result per record, in event order, so one bad record does not hide the others.
    Records(Vec<Result<S3ObjectRecord, EventError>>),
}

/// An event or record that cannot be processed. Sending it again does not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("invalid S3 event: {0}")]
    InvalidEvent(String),
    #[error("S3 event record {index} is missing {field}")]
    MissingField { index: usize, field: &'static str },
    #[error("S3 event record {index} has invalid size {size}")]
    InvalidSize { index: usize, size: i64 },
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
}

/// Parses a notification from the JSON that Lambda delivers.
///
/// # Errors
/// JSON that is neither an S3 event nor the test event gives [`EventError::InvalidEvent`]; a
/// record with a missing field or an undecodable key gives an error in its own slot.
pub fn parse_s3_notification(event: serde_json::Value) -> Result<S3Notification, EventError> {
    if event.get("Event").and_then(serde_json::Value::as_str) == Some("s3:TestEvent") {
        return Ok(S3Notification::TestEvent);
    }
    let event: S3Event = serde_json::from_value(event)
        .map_err(|error| EventError::InvalidEvent(error.to_string()))?;
    let records = event
        .records
        .iter()
        .enumerate()
        .map(|(index, record)| parse_record(index, record));
    Ok(S3Notification::Records(records.collect()))
}

fn parse_record(index: usize, record: &S3EventRecord) -> Result<S3ObjectRecord, EventError> {
    let missing = |field| EventError::MissingField { index, field };
    let event_name = record.event_name.as_deref().ok_or(missing("eventName"))?;
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .ok_or(missing("s3.bucket.name"))?;
    let raw_key = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or(missing("s3.object.key"))?;
    let size = record.s3.object.size.ok_or(missing("s3.object.size"))?;
    let size = u64::try_from(size).map_err(|_| EventError::InvalidSize { index, size })?;

    let key = decode_s3_key(raw_key)?;
    if key.len() > MAX_KEY_BYTES {
        // No such object can exist, so a copy attempt would only report it missing.
        return Err(InvalidKey {
            raw: raw_key.to_string(),
            reason: format!(
                "the decoded key has {} bytes; S3 keys have at most {MAX_KEY_BYTES}",
                key.len()
            ),
        }
        .into());
    }
    if let Some((at, control)) = key.char_indices().find(|(_, c)| c.is_control()) {
        // XML 1.0, in which OSS and S3 list and name keys, cannot carry most control characters,
        // so such an object could be copied but never listed or reconciled.
        return Err(InvalidKey {
            raw: raw_key.to_string(),
            reason: format!(
                "the decoded key has the control character U+{:04X} at byte {at}; keys with \
                 control characters are not copied, so rename the object",
                u32::from(control)
            ),
        }
        .into());
    }

    Ok(S3ObjectRecord {
        bucket,
        key,
        size,
        etag: record.s3.object.e_tag.clone(),
        sequencer: record.s3.object.sequencer.clone(),
        event_name: event_name
            .strip_prefix("s3:")
            .unwrap_or(event_name)
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(event_name: &str, key: &str, size: i64) -> serde_json::Value {
        json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2025-06-01T03:00:00.000Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "R1", "x-amz-id-2": "I1"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "sync",
                "bucket": {"name": "source-bucket", "ownerIdentity": {"principalId": "A"}, "arn": "arn:aws:s3:::source-bucket"},
                "object": {"key": key, "size": size, "eTag": "abc", "sequencer": "0065A1B2C3D4E5F601"}
            }
        })
    }

    fn records(notification: S3Notification) -> Vec<Result<S3ObjectRecord, EventError>> {
        match notification {
            S3Notification::Records(records) => records,
            S3Notification::TestEvent => panic!("expected records"),
        }
    }

    #[test]
    fn test_event_is_recognised() {
        let event = json!({
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2025-06-01T03:00:00.000Z",
            "Bucket": "source-bucket",
            "RequestId": "R1",
            "HostId": "H1"
        });
        assert_eq!(parse_s3_notification(event), Ok(S3Notification::TestEvent));
    }

    #[test]
    fn every_object_created_name_is_accepted() {
        let names = [
            "ObjectCreated:Put",
            "ObjectCreated:Post",
            "ObjectCreated:Copy",
            "ObjectCreated:CompleteMultipartUpload",
        ];
        let event = json!({"Records": names.iter().map(|name| record(name, "mysql/a", 1)).collect::<Vec<_>>()});

        let parsed = records(parse_s3_notification(event).expect("event parses"));

        assert_eq!(parsed.len(), 4);
        for (result, name) in parsed.iter().zip(names) {
            let parsed = result.as_ref().expect("record parses");
            assert_eq!(parsed.event_name, name);
            assert!(parsed.is_object_created(), "{name}");
        }
    }

    #[test]
    fn record_fields_are_copied_and_key_decoded() {
        let event = json!({"Records": [record("ObjectCreated:Put", "mysql/db/t%24x/a+b%2B%E4%B8%AD.parquet", 42)]});

        let parsed = records(parse_s3_notification(event).expect("event parses"));

        let expected = S3ObjectRecord {
            bucket: "source-bucket".to_string(),
            key: "mysql/db/t$x/a b+中.parquet".to_string(),
            size: 42,
            etag: Some("abc".to_string()),
            sequencer: Some("0065A1B2C3D4E5F601".to_string()),
            event_name: "ObjectCreated:Put".to_string(),
        };
        assert_eq!(parsed, vec![Ok(expected)]);
    }

    #[test]
    fn removal_event_is_not_object_created() {
        let event = json!({"Records": [record("ObjectRemoved:Delete", "mysql/a", 0)]});
        let parsed = records(parse_s3_notification(event).expect("event parses"));
        let record = parsed[0].as_ref().expect("record parses");
        assert!(!record.is_object_created());
    }

    #[test]
    fn bad_key_fails_only_its_record() {
        let event = json!({"Records": [record("ObjectCreated:Put", "mysql/bad%zz", 1), record("ObjectCreated:Put", "mysql/good", 1)]});

        let parsed = records(parse_s3_notification(event).expect("event parses"));

        assert!(
            matches!(&parsed[0], Err(EventError::InvalidKey(InvalidKey { raw, .. })) if raw == "mysql/bad%zz")
        );
        assert_eq!(
            parsed[1].as_ref().map(|record| record.key.as_str()),
            Ok("mysql/good")
        );
    }

    #[test]
    fn rejects_key_longer_than_s3_allows() {
        let longest = format!("mysql/{}", "k".repeat(1018));
        let too_long = format!("{longest}k");
        let event = json!({"Records": [
            record("ObjectCreated:Put", &longest, 1),
            record("ObjectCreated:Put", &too_long, 1),
        ]});

        let parsed = records(parse_s3_notification(event).expect("event parses"));

        assert!(parsed[0].is_ok(), "{:?}", parsed[0]);
        let error = parsed[1].as_ref().expect_err("1025 bytes is too long");
        assert!(error.to_string().contains("has 1025 bytes"), "{error}");
    }

    #[test]
    fn rejects_keys_with_control_characters() {
        let event = json!({"Records": [
            record("ObjectCreated:Put", "mysql/nul%00byte", 1),
            record("ObjectCreated:Put", "mysql/bell%07", 1),
            record("ObjectCreated:Put", "mysql/tab%09x", 1),
            record("ObjectCreated:Put", "mysql/%E4%B8%AD%E6%96%87+ok", 1),
        ]});

        let parsed = records(parse_s3_notification(event).expect("event parses"));

        let messages: Vec<String> = parsed[..3]
            .iter()
            .map(|record| record.as_ref().expect_err("control character").to_string())
            .collect();
        assert!(messages[0].contains("U+0000 at byte 9"), "{}", messages[0]);
        assert!(messages[1].contains("U+0007 at byte 10"), "{}", messages[1]);
        assert!(messages[2].contains("U+0009 at byte 9"), "{}", messages[2]);
        assert!(messages[0].contains("mysql/nul%00byte"), "{}", messages[0]);
        assert_eq!(
            parsed[3].as_ref().map(|record| record.key.as_str()),
            Ok("mysql/中文 ok")
        );
    }

    #[test]
    fn rejects_json_that_is_no_s3_event() {
        let error = parse_s3_notification(json!({"hello": "world"})).expect_err("not an event");
        assert!(matches!(error, EventError::InvalidEvent(_)));
    }

    #[test]
    fn rejects_negative_size() {
        let event = json!({"Records": [record("ObjectCreated:Put", "mysql/a", -1)]});
        let parsed = records(parse_s3_notification(event).expect("event parses"));
        assert_eq!(
            parsed[0],
            Err(EventError::InvalidSize { index: 0, size: -1 })
        );
    }
}
