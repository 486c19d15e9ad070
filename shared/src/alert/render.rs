//! Rendering a group of alerts of one kind into WeCom messages.
//!
//! One markdown message lists every alert, cut to the byte limit with a note of what was left out.
//! A text message follows when mobiles or `@all` are to be mentioned, because markdown messages
//! cannot mention them.

use chrono::{DateTime, FixedOffset, Utc};

use super::model::{Alert, AlertKind, Severity};
use super::rules::{AlertRules, Language};
use super::templates::{Labels, fact_label, kind_text, labels, severity_colour, severity_label};
use super::truncate::{MARKDOWN_MAX_BYTES, TEXT_MAX_BYTES, fit_list, shorten, truncate_to_bytes};
use super::wecom::WeComMessage;

/// The maximum size of one alert's line, so that one huge fact cannot push every other alert out.
const ITEM_MAX_BYTES: usize = 1024;
/// The maximum size of the function or request id list in the header.
const HEADER_FIELD_MAX_BYTES: usize = 256;

/// Renders the alerts of one kind, in the rules' language. `alerts` must not be empty.
pub fn render_group(kind: AlertKind, alerts: &[Alert], rules: &AlertRules) -> Vec<WeComMessage> {
    let language = rules.language;
    let severity = alerts
        .iter()
        .map(|alert| alert.severity)
        .max()
        .unwrap_or(Severity::Warning);
    let text = kind_text(kind, language);
    let labels = labels(language);
    let mentions = rules.mentions_for(severity);

    let mut header = format!(
        "<font color=\"{}\">**{}{}**</font>\n",
        severity_colour(severity),
        severity_label(severity, language),
        text.title
    );
    let functions = distinct(alerts.iter().map(|alert| alert.function.as_str()));
    let requests = distinct(alerts.iter().map(|alert| alert.request_id.as_str()));
    header.push_str(&format!(
        "> {}{}{}{}{}{}{}\n",
        labels.function,
        labels.colon,
        shorten(&functions, HEADER_FIELD_MAX_BYTES),
        labels.separator,
        labels.request_id,
        labels.colon,
        shorten(&requests, HEADER_FIELD_MAX_BYTES),
    ));
    header.push_str(&format!(
        "> {}{}{}\n",
        labels.time,
        labels.colon,
        time_range(alerts, &labels)
    ));
    header.push_str(&format!(
        "**{}**{}{}\n",
        labels.what_happened, labels.colon, text.what_happened
    ));
    header.push_str(&affected_line(alerts.len(), language, &labels));

    let mixed_severities = alerts.iter().any(|alert| alert.severity != severity);
    let items: Vec<String> = alerts
        .iter()
        .map(|alert| {
            shorten(
                &item_line(alert, language, &labels, mixed_severities),
                ITEM_MAX_BYTES,
            )
        })
        .collect();

    let mut footer = format!(
        "**{}**{}{}\n",
        labels.next_step, labels.colon, text.next_step
    );
    if let Some(mentions) = mentions {
        let user_mentions: Vec<String> = mentions
            .user_ids
            .iter()
            .map(|user_id| format!("<@{user_id}>"))
            .collect();
        if !user_mentions.is_empty() {
            footer.push_str(&user_mentions.join(" "));
            footer.push('\n');
        }
    }

    let content = fit_list(&header, &items, &footer, language, MARKDOWN_MAX_BYTES);
    let mut messages = vec![WeComMessage::Markdown { content }];

    if let Some(mentions) = mentions.filter(|mentions| mentions.needs_text_message()) {
        let summary = match language {
            Language::ZhCn => format!(
                "{}{}：{} 项，详情见上一条消息",
                severity_label(severity, language),
                text.title,
                alerts.len()
            ),
            Language::En => format!(
                "{} {}: {} affected, details in the previous message",
                severity_label(severity, language),
                text.title,
                alerts.len()
            ),
        };
        messages.push(WeComMessage::Text {
            content: truncate_to_bytes(&summary, TEXT_MAX_BYTES).to_string(),
            mentioned_list: if mentions.all {
                vec!["@all".to_string()]
            } else {
                Vec::new()
            },
            mentioned_mobile_list: mentions.mobiles.clone(),
        });
    }
    messages
}

fn affected_line(count: usize, language: Language, labels: &Labels) -> String {
    match language {
        Language::ZhCn => format!("**{} {count} 项**{}\n", labels.affected, labels.colon),
        Language::En => format!("**{} ({count})**{}\n", labels.affected, labels.colon),
    }
}

fn item_line(alert: &Alert, language: Language, labels: &Labels, with_severity: bool) -> String {
    let resource = &alert.resource;
    let mut parts = Vec::new();
    let mut push_id = |label: &str, value: &Option<String>| {
        if let Some(value) = value {
            parts.push(format!("{label} `{}`", clean(value)));
        }
    };
    push_id(labels.instance, &resource.instance);
    push_id(labels.backup_id, &resource.backup_id);
    push_id(labels.snapshot, &resource.snapshot);
    push_id(labels.export_id, &resource.export_id);
    match (&resource.bucket, &resource.key) {
        (Some(bucket), Some(key)) => parts.push(format!(
            "{} `{}/{}`",
            labels.object,
            clean(bucket),
            clean(key)
        )),
        (None, Some(key)) => parts.push(format!("{} `{}`", labels.object, clean(key))),
        (Some(bucket), None) => parts.push(format!("{} `{}`", labels.bucket, clean(bucket))),
        (None, None) => {}
    }
    for fact in &alert.facts {
        parts.push(format!(
            "{}{}{}",
            fact_label(fact.name, language),
            labels.colon,
            clean(&fact.value)
        ));
    }
    let prefix = if with_severity {
        severity_label(alert.severity, language)
    } else {
        ""
    };
    format!("- {prefix}{}", parts.join(labels.separator))
}

/// Keeps caller-supplied values on one line and out of markdown code spans.
fn clean(value: &str) -> String {
    value.replace(['\n', '\r'], " ").replace('`', "'")
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for value in values {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen.join(", ")
}

/// Returns the time (or first and last time) of the alerts in UTC and in Asia/Shanghai.
fn time_range(alerts: &[Alert], labels: &Labels) -> String {
    let first = alerts
        .iter()
        .map(|alert| alert.occurred_at)
        .min()
        .unwrap_or_else(Utc::now);
    let last = alerts
        .iter()
        .map(|alert| alert.occurred_at)
        .max()
        .unwrap_or(first);
    // Asia/Shanghai has used UTC+8 all year since 1991, so a fixed offset needs no tz database.
    let shanghai =
        FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| FixedOffset::east_opt(0).unwrap());
    let format = |at: DateTime<Utc>, offset: &FixedOffset| {
        at.with_timezone(offset)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let utc = FixedOffset::east_opt(0).unwrap_or(shanghai);
    if first == last {
        format!(
            "{} UTC | {} {}",
            format(first, &utc),
            format(first, &shanghai),
            labels.shanghai
        )
    } else {
        format!(
            "{} ~ {} UTC | {} ~ {} {}",
            format(first, &utc),
            format(last, &utc),
            format(first, &shanghai),
            format(last, &shanghai),
            labels.shanghai
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::model::FactName;
    use crate::alert::rules::Mentions;

    fn stale(instance: &str) -> Alert {
        Alert::new(
            AlertKind::BackupStale,
            Severity::Warning,
            "validate-backups",
            "req-1",
            "2024-05-01T02:00:00Z".parse().unwrap(),
        )
        .instance(instance)
        .fact(FactName::BackupEndTime, "2024-04-29 20:00:00 UTC")
        .fact(FactName::BackupAge, "30 h")
        .fact(FactName::MaxAge, "26 h")
    }

    fn markdown(messages: &[WeComMessage]) -> &str {
        match &messages[0] {
            WeComMessage::Markdown { content } => content,
            other => panic!("expected markdown first, got {other:?}"),
        }
    }

    #[test]
    fn stale_backup_message_in_chinese() {
        let messages = render_group(
            AlertKind::BackupStale,
            &[stale("rm-bp1")],
            &AlertRules::default(),
        );
        assert_eq!(messages.len(), 1);
        let content = markdown(&messages);
        assert!(
            content.starts_with("<font color=\"comment\">**【警告】RDS 备份超时未完成**</font>\n"),
            "{content}"
        );
        assert!(content.contains("实例 `rm-bp1`"));
        assert!(content.contains("最新备份结束时间：2024-04-29 20:00:00 UTC"));
        assert!(content.contains("距今：30 h"));
        assert!(content.contains("最长间隔：26 h"));
        assert!(content.contains("备份策略"));
        assert!(
            content.contains("2024-05-01 02:00:00 UTC | 2024-05-01 10:00:00 北京时间"),
            "{content}"
        );
    }

    #[test]
    fn english_is_used_when_configured() {
        let rules = AlertRules {
            language: Language::En,
            ..AlertRules::default()
        };
        let messages = render_group(AlertKind::BackupStale, &[stale("rm-bp1")], &rules);
        let content = markdown(&messages);
        assert!(
            content.contains("[WARNING]RDS backup is overdue"),
            "{content}"
        );
        assert!(content.contains("Instance `rm-bp1`"));
        assert!(content.contains("Asia/Shanghai"));
        assert!(!content.contains("备份"));
    }

    #[test]
    fn mentions_split_by_message_type() {
        let mut rules = AlertRules::default();
        rules.mentions.insert(
            Severity::Critical,
            Mentions {
                user_ids: vec!["zhangsan".into()],
                mobiles: vec!["13800000000".into()],
                all: true,
            },
        );
        let mut alert = stale("rm-bp1");
        alert.severity = Severity::Critical;
        let messages = render_group(AlertKind::BackupStale, &[alert], &rules);
        assert_eq!(messages.len(), 2);
        assert!(markdown(&messages).contains("<@zhangsan>"));
        assert!(markdown(&messages).starts_with("<font color=\"warning\">"));
        match &messages[1] {
            WeComMessage::Text {
                content,
                mentioned_list,
                mentioned_mobile_list,
            } => {
                assert!(content.contains("RDS 备份超时未完成"));
                assert_eq!(mentioned_list, &vec!["@all".to_string()]);
                assert_eq!(mentioned_mobile_list, &vec!["13800000000".to_string()]);
            }
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    #[test]
    fn values_cannot_break_the_markdown_line() {
        let alert = stale("rm-`x`\nnext");
        let content = render_group(AlertKind::BackupStale, &[alert], &AlertRules::default())
            .into_iter()
            .next()
            .unwrap();
        let WeComMessage::Markdown { content } = content else {
            panic!("expected markdown")
        };
        assert!(content.contains("实例 `rm-'x' next`"), "{content}");
    }
}
