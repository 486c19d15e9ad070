//! The WeCom (企业微信) group robot client: `POST {base}/cgi-bin/webhook/send?key=<key>`.
//!
//! The webhook key is the robot's only credential. It is added to the URL at request time and
//! never appears in a log, an error or `Debug` output; errors name the host only. WeCom reports
//! errors with HTTP 200 and a non-zero `errcode`, so every reply body is checked.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::time::Instant;
use url::Url;

use crate::retry::RetryPolicy;
use crate::secret::Secret;

mod config;

pub use config::{
    AllowedHost, DEFAULT_ALLOWED_HOST, DEFAULT_BASE_URL, WeComConfig, WeComConfigError,
    parse_allowed_hosts,
};

/// `errcode` for "too many messages": WeCom allows 20 messages a minute per robot.
pub const ERRCODE_RATE_LIMITED: i64 = 45009;
/// `errcode` for an unknown or invalid webhook key.
pub const ERRCODE_INVALID_KEY: i64 = 93000;
/// `errcode` for an invalid parameter, e.g. content over the byte limit.
pub const ERRCODE_INVALID_PARAMETER: i64 = 40058;

/// The maximum duration of one HTTP attempt, whatever the caller's deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeComMessage {
    /// Markdown content, at most 4096 UTF-8 bytes.
    Markdown { content: String },
    /// Plain text, at most 2048 UTF-8 bytes, with mentions by user id (or `@all`) and mobile.
    Text {
        content: String,
        mentioned_list: Vec<String>,
        mentioned_mobile_list: Vec<String>,
    },
}

impl WeComMessage {
    /// Returns the JSON request body.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            WeComMessage::Markdown { content } => {
                json!({ "msgtype": "markdown", "markdown": { "content": content } })
            }
            WeComMessage::Text {
                content,
                mentioned_list,
                mentioned_mobile_list,
            } => json!({
                "msgtype": "text",
                "text": {
                    "content": content,
                    "mentioned_list": mentioned_list,
                    "mentioned_mobile_list": mentioned_mobile_list,
                }
            }),
        }
    }
}

/// A message that was not delivered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    #[error("wecom robot at {host} rejected the message with errcode {errcode}: {errmsg}")]
    Rejected {
        host: String,
        errcode: i64,
        errmsg: String,
    },
    #[error(
        "wecom robot at {host} was still rate limiting (errcode 45009) at the deadline after {attempts} attempts"
    )]
    RateLimited { host: String, attempts: u32 },
    #[error("request to wecom robot at {host} failed after {attempts} attempts: {message}")]
    Transport {
        host: String,
        attempts: u32,
        message: String,
    },
    #[error("wecom robot at {host} returned an invalid reply (HTTP {status}): {message}")]
    InvalidReply {
        host: String,
        status: u16,
        message: String,
    },
    #[error("no time left before the deadline to send to wecom robot at {host}")]
    DeadlinePassed { host: String },
}

impl DeliveryError {
    /// Returns the WeCom `errcode`, when the robot returned one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            DeliveryError::Rejected { errcode, .. } => Some(*errcode),
            DeliveryError::RateLimited { .. } => Some(ERRCODE_RATE_LIMITED),
            _ => None,
        }
    }

    /// Returns a short reason for metrics and logs: `rejected`, `rate_limited`, `transport`, ...
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryError::Rejected { .. } => "rejected",
            DeliveryError::RateLimited { .. } => "rate_limited",
            DeliveryError::Transport { .. } => "transport",
            DeliveryError::InvalidReply { .. } => "invalid_reply",
            DeliveryError::DeadlinePassed { .. } => "deadline_passed",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Reply {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// The outcome of one attempt.
enum Attempt {
    Delivered,
    Retry(DeliveryError),
    GiveUp(DeliveryError),
}

/// Sends messages to one group robot.
#[derive(Debug, Clone)]
pub struct WeComClient {
    http: reqwest::Client,
    endpoint: Url,
    key: Secret,
    host: String,
    retry: RetryPolicy,
}

impl WeComClient {
    /// Checks the base URL against the allowlist and builds the client.
    pub fn new(config: WeComConfig) -> Result<Self, WeComConfigError> {
        let invalid = |reason: &str| WeComConfigError::InvalidBaseUrl {
            value: config.base_url.clone(),
            reason: reason.to_string(),
        };
        let base = Url::parse(&config.base_url).map_err(|error| invalid(&error.to_string()))?;
        let host_name = base
            .host_str()
            .ok_or_else(|| invalid("the URL has no host"))?
            .to_ascii_lowercase();
        let host = match base.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.clone(),
        };
        let allowed = config
            .allowed_hosts
            .iter()
            .find(|allowed| allowed.host == host_name || allowed.host == host)
            .ok_or_else(|| WeComConfigError::HostNotAllowed { host: host.clone() })?;
        match base.scheme() {
            "https" => {}
            "http" if allowed.allow_http => {}
            "http" => return Err(WeComConfigError::HttpNotAllowed { host }),
            _ => return Err(invalid("the scheme must be https")),
        }
        let endpoint = base
            .join("/cgi-bin/webhook/send")
            .map_err(|error| invalid(&error.to_string()))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| WeComConfigError::Client {
                host: host.clone(),
                message: error.without_url().to_string(),
            })?;
        Ok(Self {
            http,
            endpoint,
            key: config.key,
            host,
            retry: config.retry,
        })
    }

    /// Returns the host (and port) that messages go to, for logs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends one message, retrying `45009` and transient failures with backoff until `deadline`.
    ///
    /// Other non-zero `errcode`s (`93000` bad key, `40058` bad parameter, ...) fail at once.
    pub async fn send(
        &self,
        message: &WeComMessage,
        deadline: Instant,
    ) -> Result<(), DeliveryError> {
        let body = message.to_json();
        let mut attempt = 0u32;
        let mut rate_limited = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.deadline_error(rate_limited, attempt));
            }
            attempt += 1;
            let timeout = (deadline - now).min(ATTEMPT_TIMEOUT);
            let error = match self.attempt(&body, timeout, attempt).await {
                Attempt::Delivered => return Ok(()),
                Attempt::GiveUp(error) => return Err(error),
                // A timeout caused by the deadline would hide the rate limit that came before it.
                Attempt::Retry(DeliveryError::Transport { .. })
                    if rate_limited && Instant::now() >= deadline =>
                {
                    return Err(self.deadline_error(rate_limited, attempt));
                }
                Attempt::Retry(error) => error,
            };
            rate_limited |= matches!(error, DeliveryError::RateLimited { .. });
            let delay = self.retry.delay(attempt);
            if attempt >= self.retry.max_attempts || Instant::now() + delay >= deadline {
                return Err(error);
            }
            tracing::warn!(
                host = %self.host,
                attempt,
                delay_ms = delay.as_millis() as u64,
                errcode = error.errcode(),
                reason = error.reason(),
                "wecom robot send failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Builds the error of a send that ran out of time. It is `RateLimited` when an earlier
    /// attempt met `45009`, and `DeadlinePassed` otherwise.
    fn deadline_error(&self, rate_limited: bool, attempts: u32) -> DeliveryError {
        if rate_limited {
            DeliveryError::RateLimited {
                host: self.host.clone(),
                attempts,
            }
        } else {
            DeliveryError::DeadlinePassed {
                host: self.host.clone(),
            }
        }
    }

    async fn attempt(&self, body: &serde_json::Value, timeout: Duration, attempt: u32) -> Attempt {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("key", self.key.expose());
        let transport = |message: String| DeliveryError::Transport {
            host: self.host.clone(),
            attempts: attempt,
            message,
        };
        // `without_url` keeps the key-bearing URL out of the error text.
        let response = match self.http.post(url).timeout(timeout).json(body).send().await {
            Ok(response) => response,
            Err(error) => return Attempt::Retry(transport(error.without_url().to_string())),
        };
        let status = response.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Attempt::Retry(transport(format!("HTTP {status}")));
        }
        let text = match response.text().await {
            Ok(text) => text,
            Err(error) => return Attempt::Retry(transport(error.without_url().to_string())),
        };
        let reply: Reply = match serde_json::from_str(&text) {
            Ok(reply) => reply,
            Err(error) => {
                return Attempt::GiveUp(DeliveryError::InvalidReply {
                    host: self.host.clone(),
                    status: status.as_u16(),
                    message: format!("expected a JSON errcode reply: {error}"),
                });
            }
        };
        match reply.errcode {
            0 => Attempt::Delivered,
            ERRCODE_RATE_LIMITED => Attempt::Retry(DeliveryError::RateLimited {
                host: self.host.clone(),
                attempts: attempt,
            }),
            errcode => Attempt::GiveUp(DeliveryError::Rejected {
                host: self.host.clone(),
                errcode,
                // Scrubbed in case a proxy or a future reply echoes the URL.
                errmsg: reply.errmsg.replace(self.key.expose(), "***"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str, allowed: &str) -> WeComConfig {
        WeComConfig {
            base_url: base_url.into(),
            allowed_hosts: parse_allowed_hosts(allowed),
            ..WeComConfig::new(Secret::new("k"))
        }
    }

    #[test]
    fn default_endpoint_is_allowed() {
        let client = WeComClient::new(WeComConfig::new(Secret::new("k"))).unwrap();
        assert_eq!(client.host(), "qyapi.weixin.qq.com");
        assert_eq!(
            client.endpoint.as_str(),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
        );
    }

    #[test]
    fn rejects_hosts_outside_the_allowlist() {
        let error =
            WeComClient::new(config("https://evil.example.com", DEFAULT_ALLOWED_HOST)).unwrap_err();
        assert!(
            matches!(error, WeComConfigError::HostNotAllowed { ref host } if host == "evil.example.com")
        );
    }

    #[test]
    fn rejects_plain_http_unless_the_entry_allows_it() {
        let error = WeComClient::new(config("http://127.0.0.1:9000", "127.0.0.1")).unwrap_err();
        assert!(matches!(error, WeComConfigError::HttpNotAllowed { .. }));
        let client = WeComClient::new(config(
            "http://127.0.0.1:9000",
            "qyapi.weixin.qq.com,http://127.0.0.1",
        ))
        .unwrap();
        assert_eq!(client.host(), "127.0.0.1:9000");
    }

    #[test]
    fn rejects_other_schemes() {
        let error = WeComClient::new(config("ftp://qyapi.weixin.qq.com", DEFAULT_ALLOWED_HOST))
            .unwrap_err();
        assert!(matches!(error, WeComConfigError::InvalidBaseUrl { .. }));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = WeComConfig::new(Secret::new("super-secret-key"));
        let client = WeComClient::new(config.clone()).unwrap();
        assert!(!format!("{config:?}").contains("super-secret-key"));
        assert!(!format!("{client:?}").contains("super-secret-key"));
    }

    #[test]
    fn text_message_json_has_mentions() {
        let message = WeComMessage::Text {
            content: "hi".into(),
            mentioned_list: vec!["@all".into()],
            mentioned_mobile_list: vec!["13800000000".into()],
        };
        let json = message.to_json();
        assert_eq!(json["msgtype"], "text");
        assert_eq!(json["text"]["mentioned_list"][0], "@all");
        assert_eq!(json["text"]["mentioned_mobile_list"][0], "13800000000");
    }
}
