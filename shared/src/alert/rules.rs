//! Alert rules: which kinds alert and from what severity, who is mentioned, the message language,
//! the deduplication window and the daily summary switch.
//!
//! The rules are a JSON document, read from the `ALERT_RULES` environment variable or from an
//! object in a bucket. Unknown fields, kinds and severities are rejected with the line and column
//! of the error, so a typo fails the function at start instead of silencing alerts.
//!
//! ```json
//! {
//!   "language": "zh-CN",
//!   "min_severity": "warning",
//!   "kinds": { "backup_stale": { "min_severity": "critical" }, "sync_incomplete": { "enabled": false } },
//!   "mentions": { "critical": { "user_ids": ["zhangsan"], "mobiles": ["13800000000"], "all": false } },
//!   "dedup_window_minutes": 360,
//!   "daily_summary": false
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use serde::Deserialize;

use super::model::{AlertKind, Severity};
use crate::storage::{ObjectSource, StorageError};

/// The environment variable that contains the rules document.
pub const ALERT_RULES_VAR: &str = "ALERT_RULES";

/// The largest rules document read from a bucket; a real one is a few hundred bytes.
const MAX_RULES_BYTES: usize = 64 * 1024;

/// The language of alert messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Language {
    #[default]
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

/// The people mentioned when an alert of one severity is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mentions {
    /// WeCom user ids, mentioned as `<@userid>` in the markdown message.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// Mobile numbers, mentioned in a follow-up text message because markdown cannot mention them.
    #[serde(default)]
    pub mobiles: Vec<String>,
    /// Mentions everyone in the group (`@all`) in a follow-up text message.
    #[serde(default)]
    pub all: bool,
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        self.user_ids.is_empty() && self.mobiles.is_empty() && !self.all
    }

    /// Returns true when a follow-up text message is needed for mobiles or `@all`.
    pub fn needs_text_message(&self) -> bool {
        !self.mobiles.is_empty() || self.all
    }
}

/// The rule for one kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindRule {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Overrides the document's `min_severity` for this kind.
    #[serde(default)]
    pub min_severity: Option<Severity>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesDocument {
    #[serde(default)]
    language: Language,
    #[serde(default = "default_min_severity")]
    min_severity: Severity,
    #[serde(default)]
    kinds: BTreeMap<AlertKind, KindRule>,
    #[serde(default)]
    mentions: BTreeMap<Severity, Mentions>,
    #[serde(default = "default_dedup_window_minutes")]
    dedup_window_minutes: u64,
    #[serde(default)]
    daily_summary: bool,
}

fn default_min_severity() -> Severity {
    Severity::Warning
}

fn default_dedup_window_minutes() -> u64 {
    6 * 60
}

/// Validated alert rules. [`AlertRules::default`] is what applies when no document is configured:
/// every kind at warning and above, zh-CN, a 6-hour deduplication window, no summary, no mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRules {
    pub language: Language,
    pub min_severity: Severity,
    pub kinds: BTreeMap<AlertKind, KindRule>,
    pub mentions: BTreeMap<Severity, Mentions>,
    pub dedup_window: Duration,
    /// Whether the daily summary is sent (see [`crate::alert::summary`]).
    pub daily_summary: bool,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            language: Language::ZhCn,
            min_severity: default_min_severity(),
            kinds: BTreeMap::new(),
            mentions: BTreeMap::new(),
            dedup_window: Duration::from_secs(default_dedup_window_minutes() * 60),
            daily_summary: false,
        }
    }
}

/// A rules document that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "invalid alert rules in {origin} at line {line}, column {column}: {message}; fix the JSON document"
    )]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid alert rules in {origin}: dedup_window_minutes must be at least 1, got 0")]
    ZeroDedupWindow { origin: String },
    #[error(
        "alert rules object {location} is larger than {max_bytes} bytes; is it the right object?"
    )]
    TooLarge { location: String, max_bytes: usize },
    #[error("alert rules object {location} is not valid UTF-8")]
    NotUtf8 { location: String },
    #[error("alert rules object {location} was not found")]
    NotFound { location: String },
    #[error("failed to read alert rules: {0}")]
    Storage(#[from] StorageError),
}

impl AlertRules {
    /// Parses a rules document; `origin` names where it came from (e.g. `ALERT_RULES`) in errors.
    ///
    /// Errors carry serde_json's line and column and name the unknown field, kind or severity.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, RulesError> {
        let document: RulesDocument =
            serde_json::from_str(text).map_err(|error| RulesError::Invalid {
                origin: origin.to_string(),
                line: error.line(),
                column: error.column(),
                message: error.to_string(),
            })?;
        if document.dedup_window_minutes == 0 {
            return Err(RulesError::ZeroDedupWindow {
                origin: origin.to_string(),
            });
        }
        Ok(Self {
            language: document.language,
            min_severity: document.min_severity,
            kinds: document.kinds,
            mentions: document.mentions,
            dedup_window: Duration::from_secs(document.dedup_window_minutes * 60),
            daily_summary: document.daily_summary,
        })
    }

    /// Reads the rules from `ALERT_RULES`, or returns the defaults when it is unset or blank.
    pub fn from_env() -> Result<Self, RulesError> {
        match std::env::var(ALERT_RULES_VAR) {
            Ok(text) if !text.trim().is_empty() => Self::from_json(&text, ALERT_RULES_VAR),
            _ => Ok(Self::default()),
        }
    }

    /// Reads the rules from an object, e.g. `s3://config-bucket/alert-rules.json`.
    pub async fn from_object(source: &dyn ObjectSource, key: &str) -> Result<Self, RulesError> {
        let location = source.location(key);
        let (_, mut body) = match source.get(key, None).await {
            Ok(found) => found,
            Err(error) if error.kind == crate::storage::ErrorKind::NotFound => {
                return Err(RulesError::NotFound { location });
            }
            Err(error) => return Err(error.into()),
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = body.try_next().await? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_RULES_BYTES {
                return Err(RulesError::TooLarge {
                    location,
                    max_bytes: MAX_RULES_BYTES,
                });
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| RulesError::NotUtf8 {
            location: location.clone(),
        })?;
        Self::from_json(&text, &location)
    }

    /// Returns true when an alert of this kind and severity should be sent.
    pub fn allows(&self, kind: AlertKind, severity: Severity) -> bool {
        match self.kinds.get(&kind) {
            Some(rule) if !rule.enabled => false,
            Some(rule) => severity >= rule.min_severity.unwrap_or(self.min_severity),
            None => severity >= self.min_severity,
        }
    }

    /// Returns who to mention for a message of this severity.
    pub fn mentions_for(&self, severity: Severity) -> Option<&Mentions> {
        self.mentions
            .get(&severity)
            .filter(|mentions| !mentions.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_alert_every_kind_from_warning() {
        let rules = AlertRules::default();
        assert_eq!(rules.language, Language::ZhCn);
        assert_eq!(rules.dedup_window, Duration::from_secs(6 * 3600));
        assert!(!rules.daily_summary);
        for kind in AlertKind::ALL {
            assert!(rules.allows(kind, Severity::Warning));
            assert!(rules.allows(kind, Severity::Critical));
            assert!(!rules.allows(kind, Severity::Info));
        }
    }

    #[test]
    fn empty_document_gives_the_defaults() {
        assert_eq!(
            AlertRules::from_json("{}", "test").unwrap(),
            AlertRules::default()
        );
    }

    #[test]
    fn kind_rules_override_the_minimum_severity() {
        let text = r#"{
            "language": "en",
            "min_severity": "info",
            "kinds": {
                "backup_stale": { "min_severity": "critical" },
                "sync_incomplete": { "enabled": false }
            },
            "mentions": { "critical": { "user_ids": ["zhangsan"], "all": true } },
            "dedup_window_minutes": 30,
            "daily_summary": true
        }"#;
        let rules = AlertRules::from_json(text, "test").unwrap();
        assert_eq!(rules.language, Language::En);
        assert_eq!(rules.dedup_window, Duration::from_secs(1800));
        assert!(rules.daily_summary);
        assert!(rules.allows(AlertKind::TransferFailed, Severity::Info));
        assert!(!rules.allows(AlertKind::BackupStale, Severity::Warning));
        assert!(rules.allows(AlertKind::BackupStale, Severity::Critical));
        assert!(!rules.allows(AlertKind::SyncIncomplete, Severity::Critical));
        let mentions = rules.mentions_for(Severity::Critical).unwrap();
        assert_eq!(mentions.user_ids, vec!["zhangsan".to_string()]);
        assert!(mentions.needs_text_message());
        assert!(rules.mentions_for(Severity::Warning).is_none());
    }

    fn invalid(text: &str) -> (usize, usize, String) {
        match AlertRules::from_json(text, "ALERT_RULES") {
            Err(RulesError::Invalid {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected an invalid-rules error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_kind_is_rejected_with_its_position() {
        let (line, column, message) = invalid("{\n  \"kinds\": {\n    \"backup_sale\": {}\n  }\n}");
        assert_eq!(line, 3);
        assert!(column > 0);
        assert!(message.contains("backup_sale"), "{message}");
    }

    #[test]
    fn unknown_severity_is_rejected_with_its_position() {
        let (line, column, message) = invalid("{\"min_severity\": \"fatal\"}");
        assert_eq!(line, 1);
        assert!(column > 0);
        assert!(message.contains("fatal"), "{message}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let (_, _, message) = invalid("{\"langauge\": \"en\"}");
        assert!(message.contains("langauge"), "{message}");
    }

    #[test]
    fn unknown_language_is_rejected() {
        let (_, _, message) = invalid("{\"language\": \"fr\"}");
        assert!(message.contains("fr"), "{message}");
    }

    #[test]
    fn error_message_names_origin_and_position() {
        let error =
            AlertRules::from_json("{\n\"min_severity\": \"fatal\"}", "ALERT_RULES").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("invalid alert rules in ALERT_RULES at line 2, column"),
            "{text}"
        );
    }

    #[test]
    fn zero_dedup_window_is_rejected() {
        let error = AlertRules::from_json("{\"dedup_window_minutes\": 0}", "test").unwrap_err();
        assert!(matches!(error, RulesError::ZeroDedupWindow { .. }));
    }

    /// Serves one object from memory.
    struct OneObject {
        key: &'static str,
        body: &'static str,
    }

    #[async_trait::async_trait]
    impl ObjectSource for OneObject {
        fn location(&self, key: &str) -> String {
            format!("s3://config/{key}")
        }

        async fn head(
            &self,
            _key: &str,
        ) -> Result<Option<crate::storage::ObjectInfo>, StorageError> {
            Ok(None)
        }

        async fn get(
            &self,
            key: &str,
            _range: Option<crate::storage::ByteRange>,
        ) -> Result<(crate::storage::ObjectInfo, crate::storage::ByteStream), StorageError>
        {
            if key != self.key {
                let kind = crate::storage::ErrorKind::NotFound;
                return Err(StorageError::new(
                    kind,
                    "GetObject",
                    self.location(key),
                    "no such key",
                ));
            }
            let chunk = bytes::Bytes::from_static(self.body.as_bytes());
            let stream = futures::stream::iter([Ok(chunk)]);
            Ok((crate::storage::ObjectInfo::default(), Box::pin(stream)))
        }
    }

    #[tokio::test]
    async fn rules_are_read_from_an_object() {
        let source = OneObject {
            key: "alert-rules.json",
            body: r#"{"language": "en"}"#,
        };
        let rules = AlertRules::from_object(&source, "alert-rules.json")
            .await
            .unwrap();
        assert_eq!(rules.language, Language::En);
    }

    #[tokio::test]
    async fn errors_from_an_object_name_its_location() {
        let source = OneObject {
            key: "alert-rules.json",
            body: "{\"kinds\": {\"nope\": {}}}",
        };
        let error = AlertRules::from_object(&source, "alert-rules.json")
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("s3://config/alert-rules.json at line 1"),
            "{error}"
        );
        let missing = AlertRules::from_object(&source, "other.json")
            .await
            .unwrap_err();
        assert!(matches!(missing, RulesError::NotFound { .. }));
    }
}
