//! ApsaraDB RDS (API version 2014-08-15): `DescribeBackups` with every page followed, turned into
//! the [`Backup`] domain type.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};

use super::client::RpcClient;
use super::error::AliyunError;
use super::rds_wire::{DescribeBackupsPage, WireBackup};

/// The RDS API version every call of this module uses.
pub const RDS_API_VERSION: &str = "2014-08-15";

/// Stops a listing whose pages never end (a service that ignores `PageNumber`):
/// 1,000 pages of 100 are far more backups than any instance keeps.
const MAX_PAGES: u32 = 1000;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know, kept as the service sent it.
            Other(String),
        }

        impl $name {
            /// Reads the value as the API writes it; unknown values become `Other`.
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }

            /// Returns the value as the API writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }
    };
}

wire_enum!(
    /// `BackupStatus` of a backup set.
    BackupStatus { Success = "Success", Failed = "Failed" }
);
wire_enum!(
    /// `BackupMode`: scheduled by the backup policy or started by hand.
    BackupMode { Automated = "Automated", Manual = "Manual" }
);
wire_enum!(
    /// `BackupMethod`. A `Snapshot` backup is a cloud-disk snapshot with no download URL.
    BackupMethod { Physical = "Physical", Logical = "Logical", Snapshot = "Snapshot" }
);
wire_enum!(
    /// `BackupType`.
    BackupType { FullBackup = "FullBackup", IncrementalBackup = "IncrementalBackup" }
);

/// One backup set of an RDS instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub backup_id: String,
    pub instance_id: String,
    pub status: BackupStatus,
    pub mode: Option<BackupMode>,
    pub method: Option<BackupMethod>,
    pub backup_type: Option<BackupType>,
    pub start: DateTime<Utc>,
    /// Missing while a backup runs and for some failed ones.
    pub end: Option<DateTime<Utc>>,
    /// `BackupSize`; 0 when the service omits it.
    pub size_bytes: u64,
    /// Public download URL, a presigned OSS URL with an absolute expiry.
    pub download_url: Option<String>,
    /// Download URL reachable from the instance's region over the internal network.
    pub intranet_download_url: Option<String>,
    /// `Checksum` as the service sends it. Its CRC variant is not documented.
    pub checksum: Option<String>,
    /// The point in time the backup restores to.
    pub consistent_time: Option<DateTime<Utc>>,
    pub host_instance_id: Option<String>,
    /// `IsAvail`: whether the backup can be used for a restore.
    pub is_available: Option<bool>,
    pub store_status: Option<String>,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    /// `Encryption` as compact JSON text; the service sends an object or a string that contains one.
    pub encryption: Option<String>,
}

/// The `StartTime`/`EndTime` range of a listing. The API takes minutes, so the start is rounded
/// down and the end rounded up to whole minutes, which keeps every backup of the range in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl BackupWindow {
    /// Builds a window; fails unless `start` is before `end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, AliyunError> {
        if start >= end {
            return Err(AliyunError::InvalidArgument {
                name: "backup window",
                message: format!("start {start} must be before end {end}"),
            });
        }
        Ok(Self { start, end })
    }

    /// Builds the window of the `length` before `now`.
    pub fn last(length: TimeDelta, now: DateTime<Utc>) -> Result<Self, AliyunError> {
        Self::new(now - length, now)
    }

    /// Returns `StartTime` as the API takes it: `yyyy-MM-ddTHH:mmZ` in UTC, rounded down.
    pub fn start_param(&self) -> String {
        format_minute(floor_minute(self.start))
    }

    /// Returns `EndTime` as the API takes it, rounded up to the next whole minute.
    pub fn end_param(&self) -> String {
        let floor = floor_minute(self.end);
        format_minute(if floor == self.end {
            floor
        } else {
            floor + TimeDelta::minutes(1)
        })
    }
}

fn floor_minute(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(time)
}

fn format_minute(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// `PageSize`; the API accepts only these three values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageSize {
    #[default]
    Thirty,
    Fifty,
    Hundred,
}

impl PageSize {
    pub fn get(self) -> u32 {
        match self {
            PageSize::Thirty => 30,
            PageSize::Fifty => 50,
            PageSize::Hundred => 100,
        }
    }
}

/// Optional filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct BackupFilters {
    pub backup_id: Option<String>,
    pub status: Option<BackupStatus>,
    pub mode: Option<BackupMode>,
    pub page_size: PageSize,
}

/// The RDS API client.
#[derive(Debug, Clone)]
pub struct RdsClient {
    rpc: RpcClient,
}

impl RdsClient {
    /// Wraps an RPC client whose config names the RDS endpoint and version [`RDS_API_VERSION`].
    pub fn new(rpc: RpcClient) -> Self {
        Self { rpc }
    }

    /// Lists the backups of `instance_id` in `window`, following every page.
    ///
    /// Errors: the service's errors after retries, `InvalidResponse` when a backup lacks its id or
    /// start time or a field cannot be read, `InvalidArgument` for an empty instance id.
    pub async fn describe_backups(
        &self,
        instance_id: &str,
        window: &BackupWindow,
        filters: &BackupFilters,
    ) -> Result<Vec<Backup>, AliyunError> {
        if instance_id.trim().is_empty() {
            return Err(AliyunError::InvalidArgument {
                name: "instance id",
                message: "must not be empty".into(),
            });
        }
        let page_size = filters.page_size.get();
        let mut backups = Vec::new();
        for page_number in 1..=MAX_PAGES {
            let mut params = vec![
                ("DBInstanceId".to_string(), instance_id.to_string()),
                ("StartTime".to_string(), window.start_param()),
                ("EndTime".to_string(), window.end_param()),
                ("PageSize".to_string(), page_size.to_string()),
                ("PageNumber".to_string(), page_number.to_string()),
            ];
            if let Some(backup_id) = &filters.backup_id {
                params.push(("BackupId".to_string(), backup_id.clone()));
            }
            if let Some(status) = &filters.status {
                params.push(("BackupStatus".to_string(), status.as_str().to_string()));
            }
            if let Some(mode) = &filters.mode {
                params.push(("BackupMode".to_string(), mode.as_str().to_string()));
            }

            let page: DescribeBackupsPage = self.rpc.call("DescribeBackups", &params).await?;
            let items = page.items.map(|items| items.backup).unwrap_or_default();
            let count = items.len();
            for item in items {
                backups.push(to_backup(item, instance_id, page.request_id.as_deref())?);
            }
            tracing::debug!(
                instance_id,
                page_number,
                count,
                total = page.total_record_count,
                "listed a page of backups"
            );

            let all_listed = page
                .total_record_count
                .is_some_and(|total| backups.len() as u64 >= total);
            if count < page_size as usize || all_listed {
                return Ok(backups);
            }
        }
        Err(AliyunError::InvalidResponse {
            action: "DescribeBackups".into(),
            message: format!("instance {instance_id} still had more pages after {MAX_PAGES} pages"),
            request_id: None,
        })
    }
}

impl RdsClient {
    /// Looks up one backup by id, for a fresh download URL before a download starts or resumes.
    /// The API needs a time range, so the search covers one hour either side of `started`, the
    /// backup's `start` as listed before. Returns `None` when no such backup exists.
    pub async fn find_backup(
        &self,
        instance_id: &str,
        backup_id: &str,
        started: DateTime<Utc>,
    ) -> Result<Option<Backup>, AliyunError> {
        let window =
            BackupWindow::new(started - TimeDelta::hours(1), started + TimeDelta::hours(1))?;
        let filters = BackupFilters {
            backup_id: Some(backup_id.to_string()),
            ..BackupFilters::default()
        };
        let backups = self
            .describe_backups(instance_id, &window, &filters)
            .await?;
        Ok(backups
            .into_iter()
            .find(|backup| backup.backup_id == backup_id))
    }
}

fn to_backup(
    item: WireBackup,
    instance_id: &str,
    request_id: Option<&str>,
) -> Result<Backup, AliyunError> {
    let invalid = |message: String| AliyunError::InvalidResponse {
        action: "DescribeBackups".into(),
        message,
        request_id: request_id.map(str::to_string),
    };
    let backup_id = item
        .backup_id
        .ok_or_else(|| invalid(format!("a backup of {instance_id} has no BackupId")))?;
    let start_text = item
        .start_time
        .ok_or_else(|| invalid(format!("backup {backup_id} has no BackupStartTime")))?;
    let start = parse_time(&start_text).ok_or_else(|| {
        invalid(format!(
            "backup {backup_id} has an invalid BackupStartTime {start_text:?}"
        ))
    })?;
    let end = match item.end_time {
        Some(text) => Some(parse_time(&text).ok_or_else(|| {
            invalid(format!(
                "backup {backup_id} has an invalid BackupEndTime {text:?}"
            ))
        })?),
        None => None,
    };
    let consistent_time = item
        .consistent_time
        .and_then(|seconds| DateTime::from_timestamp(seconds as i64, 0));
    Ok(Backup {
        instance_id: item.instance_id.unwrap_or_else(|| instance_id.to_string()),
        status: BackupStatus::from_wire(item.status.as_deref().unwrap_or("")),
        mode: item.mode.as_deref().map(BackupMode::from_wire),
        method: item.method.as_deref().map(BackupMethod::from_wire),
        backup_type: item.backup_type.as_deref().map(BackupType::from_wire),
        start,
        end,
        size_bytes: item.size.unwrap_or(0),
        download_url: item.download_url,
        intranet_download_url: item.intranet_download_url,
        checksum: item.checksum,
        consistent_time,
        host_instance_id: item.host_instance_id,
        is_available: item.is_avail.map(|flag| flag != 0),
        store_status: item.store_status,
        engine: item.engine,
        engine_version: item.engine_version,
        encryption: item.encryption,
        backup_id,
    })
}

/// Parses a backup time: `2024-05-01T02:00:11Z` (what the API sends) or `2024-05-01T02:00Z`.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%MZ")
        .ok()
        .map(|time| time.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn window_rounds_to_whole_minutes_outwards() {
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 2, 3, 59).unwrap();
        let end = Utc.with_ymd_and_hms(2024, 5, 2, 23, 59, 1).unwrap();
        let window = BackupWindow::new(start, end).unwrap();
        assert_eq!(window.start_param(), "2024-05-01T02:03Z");
        assert_eq!(window.end_param(), "2024-05-03T00:00Z");
    }

    #[test]
    fn window_end_on_a_whole_minute_stays() {
        let start = Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap();
        let window = BackupWindow::new(start, start + TimeDelta::hours(1)).unwrap();
        assert_eq!(window.end_param(), "2024-05-01T01:00Z");
    }

    #[test]
    fn window_rejects_start_after_end() {
        let now = Utc::now();
        assert!(BackupWindow::new(now, now).is_err());
        assert!(BackupWindow::new(now, now - TimeDelta::seconds(1)).is_err());
    }

    #[test]
    fn parse_time_reads_both_api_forms() {
        let expected = Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap();
        assert_eq!(parse_time("2024-05-01T02:00:00Z"), Some(expected));
        assert_eq!(parse_time("2024-05-01T02:00Z"), Some(expected));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn unknown_enum_values_are_kept() {
        assert_eq!(BackupMethod::from_wire("Snapshot"), BackupMethod::Snapshot);
        assert_eq!(
            BackupStatus::from_wire("Running"),
            BackupStatus::Other("Running".into())
        );
        assert_eq!(BackupStatus::Other("Running".into()).as_str(), "Running");
    }

    #[test]
    fn backup_without_id_is_an_invalid_response() {
        let item: WireBackup =
            serde_json::from_str(r#"{"BackupStartTime": "2024-05-01T02:00:00Z"}"#).unwrap();
        let error = to_backup(item, "rm-1", Some("RID")).unwrap_err();
        assert!(matches!(error, AliyunError::InvalidResponse { .. }));
        assert_eq!(error.request_id(), Some("RID"));
    }
}
