//! The JSON of `DescribeBackups` as the service sends it, parsed leniently. One response carries
//! counts, sizes and some ids as numbers and another carries them as strings. `Encryption` comes
//! as an object or as a string that contains JSON, and optional fields may be missing or `null`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DescribeBackupsPage {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total_record_count: Option<u64>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub request_id: Option<String>,
    #[serde(default)]
    pub items: Option<Items>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Items {
    #[serde(rename = "Backup", default)]
    pub backup: Vec<WireBackup>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireBackup {
    #[serde(rename = "BackupId", default, deserialize_with = "lenient_text")]
    pub backup_id: Option<String>,
    #[serde(rename = "DBInstanceId", default, deserialize_with = "lenient_text")]
    pub instance_id: Option<String>,
    #[serde(rename = "BackupStatus", default, deserialize_with = "lenient_text")]
    pub status: Option<String>,
    #[serde(rename = "BackupMode", default, deserialize_with = "lenient_text")]
    pub mode: Option<String>,
    #[serde(rename = "BackupMethod", default, deserialize_with = "lenient_text")]
    pub method: Option<String>,
    #[serde(rename = "BackupType", default, deserialize_with = "lenient_text")]
    pub backup_type: Option<String>,
    #[serde(rename = "BackupStartTime", default, deserialize_with = "lenient_text")]
    pub start_time: Option<String>,
    #[serde(rename = "BackupEndTime", default, deserialize_with = "lenient_text")]
    pub end_time: Option<String>,
    #[serde(rename = "BackupSize", default, deserialize_with = "lenient_u64")]
    pub size: Option<u64>,
    #[serde(
        rename = "BackupDownloadURL",
        default,
        deserialize_with = "lenient_text"
    )]
    pub download_url: Option<String>,
    #[serde(
        rename = "BackupIntranetDownloadURL",
        default,
        deserialize_with = "lenient_text"
    )]
    pub intranet_download_url: Option<String>,
    #[serde(rename = "Checksum", default, deserialize_with = "lenient_text")]
    pub checksum: Option<String>,
    /// Unix seconds of the point in time the backup restores to.
    #[serde(rename = "ConsistentTime", default, deserialize_with = "lenient_u64")]
    pub consistent_time: Option<u64>,
    #[serde(rename = "HostInstanceID", default, deserialize_with = "lenient_text")]
    pub host_instance_id: Option<String>,
    /// `1` when the backup can be used for a restore, `0` otherwise.
    #[serde(rename = "IsAvail", default, deserialize_with = "lenient_u64")]
    pub is_avail: Option<u64>,
    #[serde(rename = "StoreStatus", default, deserialize_with = "lenient_text")]
    pub store_status: Option<String>,
    #[serde(rename = "Engine", default, deserialize_with = "lenient_text")]
    pub engine: Option<String>,
    #[serde(rename = "EngineVersion", default, deserialize_with = "lenient_text")]
    pub engine_version: Option<String>,
    #[serde(rename = "Encryption", default, deserialize_with = "lenient_json_text")]
    pub encryption: Option<String>,
}

/// Reads a string, a number or a boolean as text; `null` and an empty string become `None`.
fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text,
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "expected a string or a number, found {other}"
            )));
        }
    };
    let text = text.trim().to_string();
    Ok(if text.is_empty() { None } else { Some(text) })
}

/// Reads a non-negative integer sent as a number or as a decimal string; `null` and an empty
/// string become `None`. Anything else is an error, so that a garbled size is never taken as 0.
fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    match &value {
        Value::Null => Ok(None),
        Value::Number(number) => number.as_u64().map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a non-negative integer, found {number}"))
        }),
        Value::String(text) if text.trim().is_empty() => Ok(None),
        Value::String(text) => text.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected a non-negative integer, found {text:?}"))
        }),
        other => Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, found {other}"
        ))),
    }
}

/// Reads a JSON object, or a string that contains one, as compact JSON text. An empty object or
/// string becomes `None`; a string that is not JSON is kept as it is.
fn lenient_json_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let value = Value::deserialize(deserializer)?;
    let value = match value {
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(parsed @ Value::Object(_)) => parsed,
            _ => Value::String(text.trim().to_string()),
        },
        other => other,
    };
    Ok(match value {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_ids_parse_from_numbers_and_strings() {
        let numeric: DescribeBackupsPage = serde_json::from_str(
            r#"{"TotalRecordCount": 2, "RequestId": "R", "Items": {"Backup": [{"BackupId": 321, "BackupSize": 1024, "IsAvail": 1}]}}"#,
        )
        .unwrap();
        let strings: DescribeBackupsPage = serde_json::from_str(
            r#"{"TotalRecordCount": "2", "RequestId": "R", "Items": {"Backup": [{"BackupId": "321", "BackupSize": "1024", "IsAvail": "1"}]}}"#,
        )
        .unwrap();
        for page in [numeric, strings] {
            assert_eq!(page.total_record_count, Some(2));
            let backup = &page.items.as_ref().unwrap().backup[0];
            assert_eq!(backup.backup_id.as_deref(), Some("321"));
            assert_eq!(backup.size, Some(1024));
            assert_eq!(backup.is_avail, Some(1));
        }
    }

    #[test]
    fn missing_optional_fields_and_items_are_none() {
        let page: DescribeBackupsPage = serde_json::from_str(r#"{"RequestId": "R"}"#).unwrap();
        assert!(page.items.is_none());
        let page: DescribeBackupsPage =
            serde_json::from_str(r#"{"Items": {"Backup": [{"BackupId": "1", "Checksum": null, "BackupDownloadURL": ""}]}}"#).unwrap();
        let backup = &page.items.unwrap().backup[0];
        assert_eq!(backup.checksum, None);
        assert_eq!(backup.download_url, None);
        assert_eq!(backup.size, None);
    }

    #[test]
    fn encryption_parses_from_object_or_string() {
        let object: WireBackup =
            serde_json::from_str(r#"{"Encryption": {"encryptionKey": "k1"}}"#).unwrap();
        let string: WireBackup =
            serde_json::from_str(r#"{"Encryption": "{\"encryptionKey\":\"k1\"}"}"#).unwrap();
        assert_eq!(
            object.encryption.as_deref(),
            Some(r#"{"encryptionKey":"k1"}"#)
        );
        assert_eq!(string.encryption, object.encryption);
        let empty: WireBackup = serde_json::from_str(r#"{"Encryption": "{}"}"#).unwrap();
        assert_eq!(empty.encryption, None);
    }

    #[test]
    fn garbled_size_is_an_error_not_zero() {
        let result = serde_json::from_str::<WireBackup>(r#"{"BackupSize": "12 GB"}"#);
        assert!(result.is_err());
        let result = serde_json::from_str::<WireBackup>(r#"{"BackupSize": -1}"#);
        assert!(result.is_err());
    }
}
