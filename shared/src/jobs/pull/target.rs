//! Where a pulled backup goes in S3 and what metadata it carries.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use crate::aliyun::Backup;
use crate::transfer::CRC64_METADATA_KEY;

/// User metadata keys written on every pulled object, besides `crc64ecma`.
pub const BACKUP_ID_METADATA_KEY: &str = "backup-id";
pub const INSTANCE_ID_METADATA_KEY: &str = "instance-id";
pub const BACKUP_START_METADATA_KEY: &str = "backup-start";
pub const BACKUP_END_METADATA_KEY: &str = "backup-end";

/// Returns the S3 key of a backup: `<prefix><instance>/<yyyy>/<mm>/<dd>/<backup-id>/<file>`,
/// dated by the backup's start in UTC, with the file name taken from the download URL.
///
/// A URL whose last segment is not a usable file name (empty, `.`, `..`, or containing a slash
/// or control character once decoded) gives `backup-<backup-id>` instead, so the key never
/// escapes its folder.
pub fn target_key(prefix: &str, backup: &Backup, download_url: &str) -> String {
    let file_name =
        file_name_from_url(download_url).unwrap_or_else(|| format!("backup-{}", backup.backup_id));
    format!(
        "{prefix}{}/{}/{}/{}",
        backup.instance_id,
        backup.start.format("%Y/%m/%d"),
        backup.backup_id,
        file_name
    )
}

/// Returns the decoded last path segment of a URL, if it is a usable file name.
pub fn file_name_from_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let segment = parsed.path_segments()?.next_back()?;
    let name = percent_decode_str(segment).decode_utf8().ok()?.into_owned();
    let usable = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(char::is_control);
    usable.then_some(name)
}

/// Returns true when an id can be a key segment: not empty, no slash, no control character.
pub fn is_safe_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains('/')
        && !id.chars().any(char::is_control)
}

/// Returns the user metadata of a pulled object. S3 takes metadata only when a multipart upload
/// starts, so the CRC-64 is the download's `x-oss-hash-crc64ecma`, which the copy must match.
pub fn object_metadata(backup: &Backup, crc64: u64) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::from([
        (CRC64_METADATA_KEY.to_string(), crc64.to_string()),
        (BACKUP_ID_METADATA_KEY.to_string(), backup.backup_id.clone()),
        (
            INSTANCE_ID_METADATA_KEY.to_string(),
            backup.instance_id.clone(),
        ),
        (
            BACKUP_START_METADATA_KEY.to_string(),
            backup.start.to_rfc3339(),
        ),
    ]);
    if let Some(end) = backup.end {
        metadata.insert(BACKUP_END_METADATA_KEY.to_string(), end.to_rfc3339());
    }
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn backup() -> Backup {
        Backup {
            backup_id: "400000123".into(),
            instance_id: "rm-bp1abc".into(),
            status: crate::aliyun::BackupStatus::Success,
            mode: None,
            method: None,
            backup_type: None,
            start: Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 11).unwrap(),
            end: Some(Utc.with_ymd_and_hms(2024, 5, 1, 2, 30, 0).unwrap()),
            size_bytes: 10,
            download_url: None,
            intranet_download_url: None,
            checksum: None,
            consistent_time: None,
            host_instance_id: None,
            is_available: None,
            store_status: None,
            engine: None,
            engine_version: None,
            encryption: None,
        }
    }

    #[test]
    fn key_is_dated_by_backup_start_and_named_after_the_url() {
        let url = "https://rdsbak.oss-cn-hangzhou.aliyuncs.com/custins1/hins1_data_20240501_qp.xb?Expires=1&Signature=s";
        assert_eq!(
            target_key("aliyun-rds/", &backup(), url),
            "aliyun-rds/rm-bp1abc/2024/05/01/400000123/hins1_data_20240501_qp.xb"
        );
    }

    #[test]
    fn key_decodes_the_file_name() {
        let url = "https://b.oss-cn-hangzhou.aliyuncs.com/d/a%20b_qp.xb";
        assert!(target_key("p/", &backup(), url).ends_with("/400000123/a b_qp.xb"));
    }

    #[test]
    fn unusable_file_names_fall_back_to_the_backup_id() {
        for url in [
            "https://b.oss-cn-hangzhou.aliyuncs.com/",
            "https://b.oss-cn-hangzhou.aliyuncs.com/d/%2E%2E",
            "https://b.oss-cn-hangzhou.aliyuncs.com/d/a%2Fb",
            "not a url",
        ] {
            assert!(
                target_key("p/", &backup(), url).ends_with("/400000123/backup-400000123"),
                "{url}"
            );
        }
    }

    #[test]
    fn metadata_holds_crc_ids_and_times() {
        let metadata = object_metadata(&backup(), 42);
        assert_eq!(metadata["crc64ecma"], "42");
        assert_eq!(metadata["backup-id"], "400000123");
        assert_eq!(metadata["instance-id"], "rm-bp1abc");
        assert_eq!(metadata["backup-start"], "2024-05-01T02:00:11+00:00");
        assert_eq!(metadata["backup-end"], "2024-05-01T02:30:00+00:00");
    }

    #[test]
    fn ids_with_slashes_are_unsafe() {
        assert!(is_safe_id("rm-bp1abc"));
        assert!(!is_safe_id("../x"));
        assert!(!is_safe_id(""));
    }
}
