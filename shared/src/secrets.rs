//! Loads the Aliyun AccessKey (and the optional WeCom webhook key) from an AWS Secrets Manager
//! secret, so that neither lives in a Lambda's environment.
//!
//! The secret is a JSON object with string fields:
//! `{"access_key_id": "...", "access_key_secret": "...", "security_token": "...",
//! "wecom_webhook_key": "..."}`, where the last two are optional. Errors name the secret ARN and
//! the field, never a value.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::RequestId;
use serde_json::{Map, Value};

use crate::secret::{AliyunCredentials, Secret};
use crate::storage::{ErrorKind, StorageError};

const ACCESS_KEY_ID: &str = "access_key_id";
const ACCESS_KEY_SECRET: &str = "access_key_secret";
const SECURITY_TOKEN: &str = "security_token";
const WECOM_WEBHOOK_KEY: &str = "wecom_webhook_key";

/// Credentials read from one secret. `Debug` shows the AccessKey id and nothing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSecrets {
    pub aliyun: AliyunCredentials,
    /// The `key` parameter of the WeCom group robot webhook URL, when the secret has one.
    pub wecom_webhook_key: Option<Secret>,
}

/// A secret that could not be read or does not have the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(
        "failed to read secret {secret_arn}: {}{message}{}",
        code.as_deref().map(|code| format!("{code}: ")).unwrap_or_default(),
        request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default()
    )]
    Fetch {
        secret_arn: String,
        code: Option<String>,
        message: String,
        request_id: Option<String>,
        retryable: bool,
    },
    #[error("secret {secret_arn} has no value; store the credentials as a JSON string")]
    NoValue { secret_arn: String },
    #[error(
        "secret {secret_arn} is not a JSON object ({reason}); store the credentials as a JSON object of strings"
    )]
    NotJson { secret_arn: String, reason: String },
    #[error("secret {secret_arn} has no field {field}; add it to the JSON object")]
    MissingField {
        secret_arn: String,
        field: &'static str,
    },
    #[error("secret {secret_arn} has an invalid field {field}: {expected}")]
    InvalidField {
        secret_arn: String,
        field: &'static str,
        expected: &'static str,
    },
}

impl SecretsError {
    /// Returns true when reading the secret again may succeed (throttling, 5xx, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Fetch {
                retryable: true,
                ..
            }
        )
    }
}

/// Reads the secret `secret_arn` and parses the Aliyun credentials and WeCom key from it.
///
/// # Errors
/// [`SecretsError::Fetch`] when Secrets Manager rejects the request or cannot be reached (a
/// missing secret has code `ResourceNotFoundException`), and the other variants when the value
/// is not a JSON object with the required string fields.
pub async fn load_aliyun_credentials(
    client: &aws_sdk_secretsmanager::Client,
    secret_arn: &str,
) -> Result<BridgeSecrets, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_arn)
        .send()
        .await
        .map_err(|error| fetch_error(secret_arn, &error))?;

    // The console stores a string; a binary secret is accepted when it is UTF-8 text.
    let text = match (output.secret_string(), output.secret_binary()) {
        (Some(text), _) => text.to_owned(),
        (None, Some(blob)) => {
            String::from_utf8(blob.as_ref().to_vec()).map_err(|_| SecretsError::NotJson {
                secret_arn: secret_arn.to_owned(),
                reason: "binary value is not UTF-8".to_owned(),
            })?
        }
        (None, None) => {
            return Err(SecretsError::NoValue {
                secret_arn: secret_arn.to_owned(),
            });
        }
    };
    parse_secret(secret_arn, &text)
}

/// Parses the JSON value of the secret. Error text is built from positions and field names
/// only, because serde's type errors quote the offending value.
pub fn parse_secret(secret_arn: &str, text: &str) -> Result<BridgeSecrets, SecretsError> {
    let value: Value = serde_json::from_str(text).map_err(|error| SecretsError::NotJson {
        secret_arn: secret_arn.to_owned(),
        reason: format!(
            "{:?} error at line {} column {}",
            error.classify(),
            error.line(),
            error.column()
        ),
    })?;
    let Value::Object(fields) = value else {
        return Err(SecretsError::NotJson {
            secret_arn: secret_arn.to_owned(),
            reason: "the top-level value is not an object".to_owned(),
        });
    };

    let access_key_id = required_string(secret_arn, &fields, ACCESS_KEY_ID)?;
    let access_key_secret = required_string(secret_arn, &fields, ACCESS_KEY_SECRET)?;
    let security_token = optional_string(secret_arn, &fields, SECURITY_TOKEN)?;
    let wecom_webhook_key = optional_string(secret_arn, &fields, WECOM_WEBHOOK_KEY)?;

    Ok(BridgeSecrets {
        aliyun: AliyunCredentials {
            access_key_id,
            access_key_secret: Secret::new(access_key_secret),
            security_token: security_token.map(Secret::new),
        },
        wecom_webhook_key: wecom_webhook_key.map(Secret::new),
    })
}

fn required_string(
    secret_arn: &str,
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<String, SecretsError> {
    optional_string(secret_arn, fields, field)?.ok_or_else(|| SecretsError::MissingField {
        secret_arn: secret_arn.to_owned(),
        field,
    })
}

/// Reads a string field; `null`, a missing field and an empty or blank string all mean absent.
fn optional_string(
    secret_arn: &str,
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, SecretsError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
        Some(_) => Err(SecretsError::InvalidField {
            secret_arn: secret_arn.to_owned(),
            field,
            expected: "expected a string",
        }),
    }
}

fn fetch_error<E>(
    secret_arn: &str,
    error: &SdkError<E, aws_sdk_secretsmanager::config::http::HttpResponse>,
) -> SecretsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error.code().map(str::to_owned);
    let retryable = match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => StorageError::kind_for(status.unwrap_or(0), code.as_deref()) == ErrorKind::Transient,
    };
    let message = match error.message() {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => display_chain(error),
    };
    SecretsError::Fetch {
        secret_arn: secret_arn.to_owned(),
        code,
        message,
        request_id: error.request_id().map(str::to_owned),
        retryable,
    }
}

/// Joins the `Display` text of an error and its sources, leaving out the SDK's `Debug` form.
fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:bridge-AbCdEf";

    #[test]
    fn parses_all_fields() {
        let text = r#"{"access_key_id":"LTAI5t","access_key_secret":"sk-1","security_token":"tok","wecom_webhook_key":"wk"}"#;
        let secrets = parse_secret(ARN, text).unwrap();
        assert_eq!(secrets.aliyun.access_key_id, "LTAI5t");
        assert_eq!(secrets.aliyun.access_key_secret.expose(), "sk-1");
        assert_eq!(
            secrets.aliyun.security_token.as_ref().map(Secret::expose),
            Some("tok")
        );
        assert_eq!(
            secrets.wecom_webhook_key.as_ref().map(Secret::expose),
            Some("wk")
        );
    }

    #[test]
    fn optional_fields_may_be_absent_null_or_empty() {
        let text = r#"{"access_key_id":"id","access_key_secret":"sk","security_token":null,"wecom_webhook_key":""}"#;
        let secrets = parse_secret(ARN, text).unwrap();
        assert_eq!(secrets.aliyun.security_token, None);
        assert_eq!(secrets.wecom_webhook_key, None);
    }

    #[test]
    fn wrong_type_names_field_not_value() {
        let text = r#"{"access_key_id":"id","access_key_secret":987654321}"#;
        let error = parse_secret(ARN, text).unwrap_err();
        let message = error.to_string();
        assert!(matches!(
            error,
            SecretsError::InvalidField {
                field: ACCESS_KEY_SECRET,
                ..
            }
        ));
        assert!(message.contains(ARN));
        assert!(message.contains("access_key_secret"));
        assert!(!message.contains("987654321"));
    }

    #[test]
    fn non_object_json_is_rejected() {
        let error = parse_secret(ARN, r#""just-a-string-secret""#).unwrap_err();
        assert!(matches!(error, SecretsError::NotJson { .. }));
        assert!(!error.to_string().contains("just-a-string-secret"));
    }
}
