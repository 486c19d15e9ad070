//! Typed configuration of each function, read once at cold start from the environment.
//!
//! Every reader takes a `lookup` function (normally [`process_env`]) so that tests can pass a
//! map instead of changing the process environment. Each error names the variable; none contains
//! a secret value.

mod alerting;
pub mod api;
mod credentials;
pub mod export;
mod pull;
mod sync;

use std::str::FromStr;

use thiserror::Error;

pub use alerting::{AlertingConfig, Alerts, DEFAULT_STATE_PREFIX};
pub use api::ApiConfig;
pub use credentials::{CredentialsSource, load_secrets};
pub use export::{ExportPollFunctionConfig, ExportStartFunctionConfig, RdsClientOptions};
pub use pull::PullConfig;
pub use sync::SyncConfig;

use crate::alert::{RulesError, WeComConfigError};
use crate::oss::OssConfigError;
use crate::secrets::SecretsError;

/// Reads one variable; returns `None` when it is unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Looks variables up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A configuration that cannot be used. Every message names the variable.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("missing environment variable {name}: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("invalid environment variable {name}={value}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Oss(#[from] OssConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    AlertRules(#[from] RulesError),
    #[error(transparent)]
    WeCom(#[from] WeComConfigError),
}

/// Returns the trimmed value of `name`, or `None` when it is unset or blank.
pub(crate) fn optional(lookup: Lookup<'_>, name: &str) -> Option<String> {
    lookup(name)
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// Returns the trimmed value of `name`, or a [`ConfigError::Missing`] carrying `hint`.
pub(crate) fn required(
    lookup: Lookup<'_>,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    optional(lookup, name).ok_or(ConfigError::Missing { name, hint })
}

/// Parses `name` with `FromStr`, or returns `default` when it is unset.
pub(crate) fn parsed<T: FromStr>(
    lookup: Lookup<'_>,
    name: &'static str,
    default: T,
    expected: &str,
) -> Result<T, ConfigError> {
    match optional(lookup, name) {
        None => Ok(default),
        Some(value) => value.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: format!("expected {expected}"),
            value,
        }),
    }
}

/// Reads a `true`/`false` flag, `false` when unset.
pub(crate) fn flag(lookup: Lookup<'_>, name: &'static str) -> Result<bool, ConfigError> {
    parsed(lookup, name, false, "true or false")
}

/// Reads an S3 or OSS key prefix: no leading slash, and a trailing slash added when missing.
pub(crate) fn prefix(
    lookup: Lookup<'_>,
    name: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = optional(lookup, name).unwrap_or_else(|| default.to_string());
    if value.starts_with('/') || value.contains("//") || value.chars().any(char::is_control) {
        return Err(ConfigError::Invalid {
            name,
            value,
            reason: "expected a key prefix such as mysql/ without a leading slash".into(),
        });
    }
    Ok(if value.ends_with('/') {
        value
    } else {
        format!("{value}/")
    })
}

#[cfg(test)]
pub(crate) mod test_env {
    use std::collections::HashMap;

    /// Builds a lookup over fixed pairs.
    pub fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_gains_a_trailing_slash() {
        let lookup = test_env::lookup(&[("P", "mysql")]);
        assert_eq!(prefix(&lookup, "P", "x/").unwrap(), "mysql/");
    }

    #[test]
    fn prefix_defaults_when_unset() {
        let lookup = test_env::lookup(&[]);
        assert_eq!(prefix(&lookup, "P", "mysql/").unwrap(), "mysql/");
    }

    #[test]
    fn prefix_with_leading_slash_is_rejected_naming_the_variable() {
        let lookup = test_env::lookup(&[("SYNC_SOURCE_PREFIX", "/mysql/")]);
        let error = prefix(&lookup, "SYNC_SOURCE_PREFIX", "mysql/").unwrap_err();
        assert!(error.to_string().contains("SYNC_SOURCE_PREFIX=/mysql/"));
    }

    #[test]
    fn malformed_number_names_variable_and_value() {
        let lookup = test_env::lookup(&[("SYNC_CONCURRENCY", "four")]);
        let error = parsed(&lookup, "SYNC_CONCURRENCY", 4usize, "a whole number").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid environment variable SYNC_CONCURRENCY=four: expected a whole number"
        );
    }
}
