//! A generic client for Aliyun RPC-style OpenAPI calls (`?Action=…` APIs such as RDS): builds the
//! request, signs it with ACS3-HMAC-SHA256, retries transient failures and turns the JSON error
//! document into an [`AliyunError`].

use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::error::AliyunError;
use super::signer::{self, SignableRequest};
use crate::retry::{RetryPolicy, retry};
use crate::secret::AliyunCredentials;

/// The base URL of an API: scheme and authority, with no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
}

/// Regions whose RDS API is served by the central `rds.aliyuncs.com`, from the endpoint map of the
/// official `alibabacloud-rds20140815` SDK 16.0.2. Other regions use `rds.<region>.aliyuncs.com`.
const CENTRAL_RDS_REGIONS: &[&str] = &[
    "cn-qingdao",
    "cn-beijing",
    "cn-hangzhou",
    "cn-shanghai",
    "cn-shenzhen",
    "cn-heyuan",
    "cn-hongkong",
    "ap-southeast-1",
    "us-west-1",
    "us-east-1",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-north-2-gov-1",
];

impl Endpoint {
    /// Returns the HTTPS RDS endpoint for `region`: `rds.aliyuncs.com` without a region or for a
    /// region the central endpoint serves, `rds.<region>.aliyuncs.com` otherwise.
    pub fn rds_for_region(region: Option<&str>) -> Result<Self, AliyunError> {
        let host = match region.map(str::trim).filter(|r| !r.is_empty()) {
            Some(region) if !CENTRAL_RDS_REGIONS.contains(&region) => {
                if !region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return Err(AliyunError::InvalidArgument {
                        name: "region",
                        message: format!("{region:?} is not a region id such as cn-hangzhou"),
                    });
                }
                format!("rds.{region}.aliyuncs.com")
            }
            _ => "rds.aliyuncs.com".to_string(),
        };
        Self::parse(&host, false)
    }

    /// Parses an endpoint override: `host[:port]` (HTTPS) or `https://host[:port]`.
    /// `http://` is accepted only when `allow_plain_http` is set, which only local tests do.
    pub fn parse(text: &str, allow_plain_http: bool) -> Result<Self, AliyunError> {
        let invalid = |message: String| AliyunError::InvalidArgument {
            name: "endpoint",
            message,
        };
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        let base = Url::parse(&with_scheme)
            .map_err(|error| invalid(format!("{text:?} is not a host or URL: {error}")))?;
        match base.scheme() {
            "https" => {}
            "http" if allow_plain_http => {}
            "http" => return Err(invalid(format!("{text:?} uses plain http; use https"))),
            other => return Err(invalid(format!("{text:?} uses scheme {other}; use https"))),
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid(format!("{text:?} has no host")));
        }
        if base.path() != "/" || base.query().is_some() || !base.username().is_empty() {
            return Err(invalid(format!(
                "{text:?} must be a scheme and host only, without path, query or user"
            )));
        }
        Ok(Self { base })
    }

    /// Returns `host[:port]` as the `host` header carries it (the port only when not the default).
    pub fn authority(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// Returns the endpoint as a URL such as `https://rds.aliyuncs.com/`.
    pub fn url(&self) -> &Url {
        &self.base
    }
}

/// Settings of one API client.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    pub endpoint: Endpoint,
    /// The API version, `2014-08-15` for RDS.
    pub version: String,
    pub retry: RetryPolicy,
    /// Time limit of one attempt, connection and body included.
    pub timeout: Duration,
}

/// Signs and sends RPC-style calls to one product's API.
#[derive(Debug, Clone)]
pub struct RpcClient {
    http: reqwest::Client,
    credentials: AliyunCredentials,
    config: RpcConfig,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDocument {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

impl RpcClient {
    /// Builds a client. Fails only when the HTTP client cannot be built (no TLS roots).
    pub fn new(credentials: AliyunCredentials, config: RpcConfig) -> Result<Self, AliyunError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirect would send the signed request to another host; no OpenAPI endpoint uses one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| AliyunError::InvalidArgument {
                name: "http client",
                message: error.to_string(),
            })?;
        Ok(Self {
            http,
            credentials,
            config,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// Calls `action` with `params` in the query and parses the JSON response into `T`. Transient
    /// failures are retried with backoff and full jitter; every attempt gets a fresh date and nonce.
    pub async fn call<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<T, AliyunError> {
        retry(&self.config.retry, AliyunError::is_retryable, |_attempt| {
            self.call_once(action, params)
        })
        .await
    }

    async fn call_once<T: DeserializeOwned>(
        &self,
        action: &str,
        params: &[(String, String)],
    ) -> Result<T, AliyunError> {
        let authority = self.config.endpoint.authority();
        let payload_hash = signer::hash_payload(b"");
        let nonce = hex::encode(rand::rng().random::<[u8; 16]>());
        let mut headers: Vec<(String, String)> = vec![
            ("host".into(), authority.clone()),
            ("x-acs-action".into(), action.to_string()),
            ("x-acs-version".into(), self.config.version.clone()),
            ("x-acs-date".into(), signer::format_date(Utc::now())),
            ("x-acs-signature-nonce".into(), nonce),
            ("x-acs-content-sha256".into(), payload_hash.clone()),
        ];
        if let Some(token) = &self.credentials.security_token {
            headers.push(("x-acs-security-token".into(), token.expose().to_string()));
        }
        let request = SignableRequest {
            method: "POST",
            path: "/",
            query: params,
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let authorization = signer::authorization(
            &self.credentials.access_key_id,
            self.credentials.access_key_secret.expose(),
            &request,
        );

        // The query is encoded here, as it was signed, so that the URL library cannot re-encode it.
        let mut url = self.config.endpoint.url().clone();
        let query = params
            .iter()
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    signer::percent_encode(name),
                    signer::percent_encode(value)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(if query.is_empty() { None } else { Some(&query) });

        let mut builder = self
            .http
            .post(url)
            .header("authorization", authorization)
            .header("accept", "application/json");
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let transport = |error: reqwest::Error| AliyunError::Transport {
            action: action.to_string(),
            endpoint: authority.clone(),
            // Credentials travel only in headers, which reqwest errors never print. The URL is
            // left out to keep the message short.
            message: error.without_url().to_string(),
        };
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;

        if (200..300).contains(&status) {
            return serde_json::from_slice(&body).map_err(|error| AliyunError::InvalidResponse {
                action: action.to_string(),
                message: format!("body is not the expected JSON: {error}"),
                request_id: request_id_of(&body),
            });
        }
        let document: Option<ErrorDocument> = serde_json::from_slice(&body).ok();
        let (code, message, request_id) = match document {
            Some(document) => (document.code, document.message, document.request_id),
            None => (None, None, None),
        };
        let error = AliyunError::Service {
            action: action.to_string(),
            status,
            code: code.unwrap_or_else(|| format!("Http{status}")),
            message: message.unwrap_or_else(|| "no error document in the response".to_string()),
            request_id,
        };
        tracing::debug!(
            action,
            status,
            code = error.code(),
            request_id = error.request_id(),
            "openapi call failed"
        );
        Err(error)
    }
}

fn request_id_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct WithRequestId {
        #[serde(rename = "RequestId")]
        request_id: Option<String>,
    }
    serde_json::from_slice::<WithRequestId>(body)
        .ok()
        .and_then(|document| document.request_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn central_regions_use_the_central_rds_endpoint() {
        assert_eq!(
            Endpoint::rds_for_region(None).unwrap().authority(),
            "rds.aliyuncs.com"
        );
        assert_eq!(
            Endpoint::rds_for_region(Some("cn-hangzhou"))
                .unwrap()
                .authority(),
            "rds.aliyuncs.com"
        );
    }

    #[test]
    fn other_regions_use_a_regional_rds_endpoint() {
        let endpoint = Endpoint::rds_for_region(Some("eu-central-1")).unwrap();
        assert_eq!(
            endpoint.url().as_str(),
            "https://rds.eu-central-1.aliyuncs.com/"
        );
    }

    #[test]
    fn rejects_region_ids_that_are_not_host_labels() {
        assert!(Endpoint::rds_for_region(Some("evil.example/x")).is_err());
    }

    #[test]
    fn endpoint_override_keeps_the_port() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8080", true).unwrap();
        assert_eq!(endpoint.authority(), "127.0.0.1:8080");
    }

    #[test]
    fn plain_http_endpoint_is_rejected_unless_allowed() {
        assert!(Endpoint::parse("http://127.0.0.1:8080", false).is_err());
        assert!(Endpoint::parse("ftp://rds.aliyuncs.com", true).is_err());
    }

    #[test]
    fn endpoint_with_a_path_is_rejected() {
        assert!(Endpoint::parse("https://rds.aliyuncs.com/api", false).is_err());
    }
}
