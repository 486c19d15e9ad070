//! S3 event notifications built the way S3 sends them, for tests and `make demo`.

use serde_json::{Value, json};

/// Encodes an object key as S3 writes it into event notifications: form encoding per path
/// segment (a space becomes `+`, a plus `%2B`, other bytes `%XX`), with `/` kept.
pub fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// One `ObjectCreated` record as S3 writes it.
#[derive(Debug, Clone)]
pub struct CreatedObject<'a> {
    /// The event name after `ObjectCreated:`, e.g. `Put` or `CompleteMultipartUpload`.
    pub event: &'a str,
    pub bucket: &'a str,
    /// The key as stored in S3, not encoded.
    pub key: &'a str,
    pub size: u64,
    pub etag: &'a str,
    pub sequencer: &'a str,
}

/// Builds a notification with one record per object, in the given order.
pub fn object_created_event(objects: &[CreatedObject<'_>]) -> Value {
    let records: Vec<Value> = objects
        .iter()
        .map(|object| {
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "eventName": format!("ObjectCreated:{}", object.event),
                "userIdentity": { "principalId": "AWS:AROAEXAMPLEEXPORTROLE:export-task" },
                "requestParameters": { "sourceIPAddress": "127.0.0.1" },
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "backup-bridge-sync",
                    "bucket": {
                        "name": object.bucket,
                        "ownerIdentity": { "principalId": "A3NL1KOZZKExample" },
                        "arn": format!("arn:aws:s3:::{}", object.bucket)
                    },
                    "object": {
                        "key": encode_key(object.key),
                        "size": object.size,
                        "eTag": object.etag,
                        "sequencer": object.sequencer
                    }
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_key_matches_s3_notification_encoding() {
        assert_eq!(
            encode_key("mysql/a b+c$d/备.gz"),
            "mysql/a+b%2Bc%24d/%E5%A4%87.gz"
        );
    }

    #[test]
    fn event_carries_one_record_per_object() {
        let objects = [
            CreatedObject {
                event: "Put",
                bucket: "b",
                key: "mysql/x",
                size: 1,
                etag: "e1",
                sequencer: "01",
            },
            CreatedObject {
                event: "CompleteMultipartUpload",
                bucket: "b",
                key: "mysql/y z",
                size: 2,
                etag: "e2-2",
                sequencer: "02",
            },
        ];
        let event = object_created_event(&objects);
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[1]["eventName"],
            "ObjectCreated:CompleteMultipartUpload"
        );
        assert_eq!(records[1]["s3"]["object"]["key"], "mysql/y+z");
    }
}
