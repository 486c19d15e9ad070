//! The daily summary: one WeCom message a day with what every function did the day before.
//!
//! Each invocation leaves a record under `<state prefix>summary/<day>/<function>/`, the day
//! counted in Asia/Shanghai (UTC+8, no daylight saving). The record's key carries its counts, so
//! the summary is built from listing alone, however many invocations a day brings (the sync runs
//! once per exported file). The first invocation after 09:00 Shanghai time claims the previous
//! day with a conditional-put marker, so exactly one invocation sends it; when sending fails it
//! gives the claim back and a later invocation tries again.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Offset, Timelike, Utc};
use serde_json::json;

use super::rules::Language;
use super::truncate::{MARKDOWN_MAX_BYTES, truncate_to_bytes};
use super::wecom::WeComMessage;

/// The hour of the day (Asia/Shanghai) from which the previous day's summary is sent.
pub const SEND_HOUR_SHANGHAI: u32 = 9;

/// Key folder of the run records, below the state prefix.
pub const RECORD_FOLDER: &str = "summary/";
/// Key folder of the "summary sent" markers, below the state prefix.
pub const SENT_FOLDER: &str = "summary-sent/";

/// What one invocation did, as the summary counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTally {
    pub function: String,
    pub request_id: String,
    /// Items (objects, backups, exports) that ended well, including those found done already.
    pub succeeded: u64,
    pub failed: u64,
    /// Bytes copied.
    pub bytes: u64,
    /// Alerts the invocation raised.
    pub alerts: u64,
}

/// The totals of one function over one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionTotals {
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub bytes: u64,
    pub alerts: u64,
}

/// One day's totals per function, by function name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySummary {
    pub day: NaiveDate,
    pub functions: BTreeMap<String, FunctionTotals>,
}

fn shanghai() -> FixedOffset {
    // China has kept UTC+8 all year since 1991; eight hours is inside FixedOffset's range.
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// The calendar day at `at` in Asia/Shanghai.
pub fn shanghai_day(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&shanghai()).date_naive()
}

/// The day whose summary is due at `now`: yesterday (Shanghai) once it is 09:00 there.
pub fn due_day(now: DateTime<Utc>) -> Option<NaiveDate> {
    let local = now.with_timezone(&shanghai());
    if local.hour() < SEND_HOUR_SHANGHAI {
        return None;
    }
    local.date_naive().checked_sub_days(Days::new(1))
}

/// The folder of one day's records, below the state prefix.
pub fn day_folder(day: NaiveDate) -> String {
    format!("{RECORD_FOLDER}{day}/")
}

/// The key, below the state prefix, of the marker that says `day`'s summary was claimed.
pub fn sent_marker_key(day: NaiveDate) -> String {
    format!("{SENT_FOLDER}{day}")
}

impl RunTally {
    /// The record's key below the state prefix:
    /// `summary/<day>/<function>/<succeeded>-<failed>-<bytes>-<alerts>-<request id>`.
    pub fn record_key(&self, day: NaiveDate) -> String {
        format!(
            "{}{}/{}-{}-{}-{}-{}",
            day_folder(day),
            key_safe(&self.function),
            self.succeeded,
            self.failed,
            self.bytes,
            self.alerts,
            key_safe(&self.request_id)
        )
    }

    /// The record's body, for a person reading the state bucket.
    pub fn record_body(&self, at: DateTime<Utc>) -> String {
        json!({
            "function": self.function,
            "request_id": self.request_id,
            "at": at.to_rfc3339(),
            "succeeded": self.succeeded,
            "failed": self.failed,
            "bytes": self.bytes,
            "alerts": self.alerts,
        })
        .to_string()
    }
}

/// Keeps letters, digits, `-`, `_` and `.`; anything else becomes `_`, so a name cannot add a
/// folder or break the count fields.
fn key_safe(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

/// Adds up the records listed under `day_folder(day)`; `keys` are relative to that folder.
/// Keys that are not records are ignored.
pub fn collect<'a>(day: NaiveDate, keys: impl Iterator<Item = &'a str>) -> DaySummary {
    let mut functions: BTreeMap<String, FunctionTotals> = BTreeMap::new();
    for key in keys {
        let Some((function, name)) = key.split_once('/') else {
            continue;
        };
        let mut fields = name.splitn(5, '-');
        let mut number = || fields.next().and_then(|field| field.parse::<u64>().ok());
        let (Some(succeeded), Some(failed), Some(bytes), Some(alerts)) =
            (number(), number(), number(), number())
        else {
            continue;
        };
        let totals = functions.entry(function.to_string()).or_default();
        totals.runs += 1;
        totals.succeeded += succeeded;
        totals.failed += failed;
        totals.bytes += bytes;
        totals.alerts += alerts;
    }
    DaySummary { day, functions }
}

/// Renders the summary as one markdown message in `language`.
pub fn render(summary: &DaySummary, language: Language) -> WeComMessage {
    let failed: u64 = summary.functions.values().map(|totals| totals.failed).sum();
    let colour = if failed > 0 { "warning" } else { "info" };
    let zh = matches!(language, Language::ZhCn);
    let mut content = if zh {
        format!(
            "<font color=\"{colour}\">**backup-bridge 每日汇总**</font>\n> 日期：{}（北京时间）\n",
            summary.day
        )
    } else {
        format!(
            "<font color=\"{colour}\">**backup-bridge daily summary**</font>\n> Day: {} (Asia/Shanghai)\n",
            summary.day
        )
    };
    if summary.functions.is_empty() {
        content.push_str(if zh {
            "当天没有任何函数运行的记录，请检查定时规则和 S3 事件通知。\n"
        } else {
            "No function recorded a run that day: check the schedules and the S3 event notification.\n"
        });
    }
    for (function, totals) in &summary.functions {
        let bytes = human_bytes(totals.bytes);
        let line = if zh {
            format!(
                "> `{function}`：运行 {} 次，成功 {} 项，失败 {} 项，复制 {bytes}，告警 {} 条\n",
                totals.runs, totals.succeeded, totals.failed, totals.alerts
            )
        } else {
            format!(
                "> `{function}`: {} runs, {} succeeded, {} failed, {bytes} copied, {} alerts\n",
                totals.runs, totals.succeeded, totals.failed, totals.alerts
            )
        };
        content.push_str(&line);
    }
    if failed > 0 {
        content.push_str(if zh {
            "**下一步**：失败项的详情见当天的告警消息和函数日志。\n"
        } else {
            "**Next**: the day's alert messages and the function logs hold the failed items.\n"
        });
    }
    WeComMessage::Markdown {
        content: truncate_to_bytes(&content, MARKDOWN_MAX_BYTES).to_string(),
    }
}

/// Bytes in binary units with one decimal, e.g. `1.5 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn markdown(message: &WeComMessage) -> &str {
        match message {
            WeComMessage::Markdown { content } => content,
            WeComMessage::Text { content, .. } => content,
        }
    }

    #[test]
    fn the_day_is_counted_in_shanghai_time() {
        // 16:30 UTC is 00:30 the next day in Shanghai.
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 16, 30, 0).unwrap();
        assert_eq!(shanghai_day(at), day("2026-12-04"));
    }

    #[test]
    fn yesterday_is_due_from_nine_in_shanghai() {
        let before = Utc.with_ymd_and_hms(2026, 12, 4, 0, 59, 0).unwrap(); // 08:59 Shanghai
        let after = Utc.with_ymd_and_hms(2026, 12, 4, 1, 0, 0).unwrap(); // 09:00 Shanghai
        assert_eq!(due_day(before), None);
        assert_eq!(due_day(after), Some(day("2026-12-03")));
    }

    #[test]
    fn record_keys_round_trip_through_collect() {
        let day = day("2026-12-03");
        let runs = [
            RunTally {
                function: "s3-oss-sync".into(),
                request_id: "a1".into(),
                succeeded: 3,
                failed: 1,
                bytes: 1024,
                alerts: 1,
            },
            RunTally {
                function: "s3-oss-sync".into(),
                request_id: "b-2/../x".into(),
                succeeded: 2,
                failed: 0,
                bytes: 2048,
                alerts: 0,
            },
            RunTally {
                function: "aliyun-backup-pull".into(),
                request_id: "c3".into(),
                succeeded: 1,
                ..RunTally::default()
            },
        ];
        let folder = day_folder(day);
        let keys: Vec<String> = runs
            .iter()
            .map(|run| {
                let key = run.record_key(day);
                key.strip_prefix(&folder).unwrap().to_string()
            })
            .collect();
        assert!(keys[1].ends_with("b-2_.._x"), "{}", keys[1]);

        let summary = collect(
            day,
            keys.iter()
                .map(String::as_str)
                .chain(["not-a-record", "x/y-z"]),
        );

        assert_eq!(summary.functions.len(), 2);
        let sync = summary.functions["s3-oss-sync"];
        assert_eq!(
            sync,
            FunctionTotals {
                runs: 2,
                succeeded: 5,
                failed: 1,
                bytes: 3072,
                alerts: 1
            }
        );
        assert_eq!(summary.functions["aliyun-backup-pull"].runs, 1);
    }

    #[test]
    fn renders_chinese_by_default_and_english_on_request() {
        let mut functions = BTreeMap::new();
        functions.insert(
            "s3-oss-sync".to_string(),
            FunctionTotals {
                runs: 120,
                succeeded: 118,
                failed: 2,
                bytes: 3 * 1024 * 1024 * 1024 / 2,
                alerts: 2,
            },
        );
        let summary = DaySummary {
            day: day("2026-12-03"),
            functions,
        };

        let zh = render(&summary, Language::ZhCn);
        let zh = markdown(&zh);
        assert!(zh.contains("每日汇总"), "{zh}");
        assert!(zh.contains("2026-12-03"), "{zh}");
        assert!(
            zh.contains("运行 120 次，成功 118 项，失败 2 项，复制 1.5 GiB"),
            "{zh}"
        );
        assert!(zh.contains("color=\"warning\""), "{zh}");

        let en = render(&summary, Language::En);
        let en = markdown(&en);
        assert!(
            en.contains("120 runs, 118 succeeded, 2 failed, 1.5 GiB copied"),
            "{en}"
        );
    }

    #[test]
    fn an_empty_day_says_nothing_ran() {
        let summary = DaySummary {
            day: day("2026-12-03"),
            functions: BTreeMap::new(),
        };
        let text = render(&summary, Language::ZhCn);
        let text = markdown(&text);
        assert!(text.contains("没有任何函数运行的记录"), "{text}");
        assert!(text.contains("color=\"info\""), "{text}");
    }
}
