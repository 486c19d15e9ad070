//! The backups the fake serves, loaded from `DescribeBackups` fixtures, and the filtering and
//! paging of `DescribeBackups` over them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use super::{ApiError, BackupRef, DownloadUrlFactory};

/// The fixtures shipped in `testkit/fixtures/aliyun/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// Counts, ids and sizes as JSON numbers, `Encryption` as an object.
    Numeric,
    /// Every scalar as a JSON string, `Encryption` as a string that contains JSON.
    AllStrings,
    /// A `DescribeBackups` response built by the caller, such as a generated demo backup.
    Inline(&'static str),
}

impl Fixture {
    /// Returns the fixture's JSON, a complete `DescribeBackups` response.
    pub fn json(self) -> &'static str {
        match self {
            Fixture::Numeric => include_str!("../../fixtures/aliyun/describe_backups_numeric.json"),
            Fixture::AllStrings => {
                include_str!("../../fixtures/aliyun/describe_backups_strings.json")
            }
            Fixture::Inline(json) => json,
        }
    }
}

/// The backups of a fixture and the JSON types its counts use.
pub(super) struct Catalog {
    items: Vec<Map<String, Value>>,
    counts_as_strings: bool,
}

fn text_of(item: &Map<String, Value>, name: &str) -> Option<String> {
    match item.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn parse_minute(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%MZ")
        .map(|time| time.and_utc())
        .map_err(|_| {
            ApiError::new(
                400,
                &format!("Invalid{name}.Malformed"),
                &format!("Specified {name} is not valid."),
            )
        })
}

impl Catalog {
    /// Loads `Items.Backup` of a `DescribeBackups` response; fails on any other shape.
    pub fn load(fixture_json: &str) -> anyhow::Result<Self> {
        let document: Value = serde_json::from_str(fixture_json)?;
        let counts_as_strings = document
            .get("TotalRecordCount")
            .is_some_and(Value::is_string);
        let items = document
            .pointer("/Items/Backup")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow::anyhow!("fixture has no Items.Backup array"))?
            .iter()
            .map(|item| {
                item.as_object()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("fixture backup is not an object"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            items,
            counts_as_strings,
        })
    }

    /// Returns every backup of the fixture, for tests that compare a listing with it.
    pub fn backups(&self) -> Vec<BackupRef> {
        self.items.iter().map(backup_ref).collect()
    }

    fn count(&self, value: u64) -> Value {
        if self.counts_as_strings {
            Value::String(value.to_string())
        } else {
            json!(value)
        }
    }

    /// Builds the `DescribeBackups` response for the decoded query `params`.
    pub fn describe_backups(
        &self,
        params: &BTreeMap<String, String>,
        urls: Option<&DownloadUrlFactory>,
        request_id: &str,
    ) -> Result<Value, ApiError> {
        let instance_id = params.get("DBInstanceId").ok_or_else(|| {
            ApiError::new(
                400,
                "MissingDBInstanceId",
                "DBInstanceId is mandatory for this action.",
            )
        })?;
        if !self
            .items
            .iter()
            .any(|item| text_of(item, "DBInstanceId").as_deref() == Some(instance_id))
        {
            return Err(ApiError::new(
                404,
                "InvalidDBInstanceId.NotFound",
                "Specified instance does not exist.",
            ));
        }
        let start = params
            .get("StartTime")
            .map(|text| parse_minute("StartTime", text))
            .transpose()?;
        let end = params
            .get("EndTime")
            .map(|text| parse_minute("EndTime", text))
            .transpose()?;
        let page_size: u64 = match params.get("PageSize").map(String::as_str) {
            None => 30,
            Some(text @ ("30" | "50" | "100")) => text.parse().unwrap_or(30),
            Some(_) => {
                return Err(ApiError::new(
                    400,
                    "InvalidPageSize",
                    "PageSize must be 30, 50 or 100.",
                ));
            }
        };
        let page_number: u64 = match params.get("PageNumber") {
            None => 1,
            Some(text) => text
                .parse()
                .ok()
                .filter(|number| *number >= 1)
                .ok_or_else(|| {
                    ApiError::new(
                        400,
                        "InvalidPageNumber",
                        "PageNumber must be a positive integer.",
                    )
                })?,
        };

        let matches = |item: &&Map<String, Value>| {
            let field_is = |name: &str, param: &str| {
                params.get(param).is_none_or(|expected| {
                    text_of(item, name).as_deref() == Some(expected.as_str())
                })
            };
            let started = text_of(item, "BackupStartTime")
                .and_then(|text| DateTime::parse_from_rfc3339(&text).ok())
                .map(|time| time.with_timezone(&Utc));
            let in_window = match started {
                Some(started) => {
                    start.is_none_or(|start| started >= start)
                        && end.is_none_or(|end| started <= end)
                }
                None => false,
            };
            field_is("DBInstanceId", "DBInstanceId")
                && field_is("BackupId", "BackupId")
                && field_is("BackupStatus", "BackupStatus")
                && field_is("BackupMode", "BackupMode")
                && in_window
        };
        let selected: Vec<&Map<String, Value>> = self.items.iter().filter(matches).collect();

        let skip = ((page_number - 1) * page_size) as usize;
        let page: Vec<Value> = selected
            .iter()
            .skip(skip)
            .take(page_size as usize)
            .map(|item| Value::Object(with_fresh_urls(item, urls)))
            .collect();
        Ok(json!({
            "Items": { "Backup": page },
            "PageNumber": self.count(page_number),
            "PageRecordCount": self.count(page.len() as u64),
            "TotalRecordCount": self.count(selected.len() as u64),
            "TotalEcsSnapshotSize": self.count(0),
            "RequestId": request_id,
        }))
    }
}

fn backup_ref(item: &Map<String, Value>) -> BackupRef {
    let url = text_of(item, "BackupDownloadURL").unwrap_or_default();
    let path = url.split('?').next().unwrap_or_default();
    BackupRef {
        instance_id: text_of(item, "DBInstanceId").unwrap_or_default(),
        backup_id: text_of(item, "BackupId").unwrap_or_default(),
        file_name: path.rsplit('/').next().unwrap_or_default().to_string(),
        size: text_of(item, "BackupSize")
            .and_then(|text| text.parse().ok())
            .unwrap_or(0),
        downloadable: !url.is_empty(),
    }
}

/// Replaces the fixture's placeholder URLs with the factory's, as the service hands out new
/// presigned URLs on every call. Backups without a URL (failed, snapshot) keep none.
fn with_fresh_urls(
    item: &Map<String, Value>,
    urls: Option<&DownloadUrlFactory>,
) -> Map<String, Value> {
    let mut item = item.clone();
    let backup = backup_ref(&item);
    if let (Some(factory), true) = (urls, backup.downloadable) {
        let fresh = factory(&backup);
        item.insert("BackupDownloadURL".into(), Value::String(fresh.public));
        item.insert(
            "BackupIntranetDownloadURL".into(),
            Value::String(fresh.intranet),
        );
    }
    item
}
