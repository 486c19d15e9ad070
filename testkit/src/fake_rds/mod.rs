//! A fake Aliyun RDS OpenAPI server on 127.0.0.1 for tests and the demo.
//!
//! It verifies ACS3-HMAC-SHA256 signatures as the real gateway does (a wrong secret gives
//! `SignatureDoesNotMatch`, an `x-acs-date` more than 15 minutes off gives
//! `InvalidTimeStamp.Expired`, a reused nonce gives `SignatureNonceUsed`). It serves
//! `DescribeBackups` pages from a fixture in the numeric or the all-strings shape and returns
//! errors as Aliyun's JSON error document. Tests can script throttling and other failures.
//!
//! NOTE: only `DescribeBackups` is implemented; other actions get `InvalidAction.NotFound`.

mod auth;
mod catalog;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use percent_encoding::percent_decode_str;
use serde_json::json;
use tokio::sync::oneshot;

pub use catalog::Fixture;

use auth::{IncomingRequest, Verifier};
use catalog::Catalog;

/// One backup of the fixture, as passed to a download URL factory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    pub instance_id: String,
    pub backup_id: String,
    /// The last path segment of the fixture's download URL, such as `hins1_data_20240501_qp.xb`.
    pub file_name: String,
    pub size: u64,
    /// False for backups that the fixture lists without a download URL (failed, snapshot).
    pub downloadable: bool,
}

/// The public and intranet download URLs of one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrls {
    pub public: String,
    pub intranet: String,
}

/// Makes fresh download URLs for a backup on every `DescribeBackups` call, for example presigned
/// GET URLs of the fake OSS, so that this fake needs to know nothing about the OSS fake.
pub type DownloadUrlFactory = Arc<dyn Fn(&BackupRef) -> DownloadUrls + Send + Sync>;

/// Settings of the fake.
#[derive(Clone)]
pub struct FakeRdsConfig {
    pub access_key_id: String,
    pub access_key_secret: String,
    /// When set, every request must carry this STS token in `x-acs-security-token`.
    pub security_token: Option<String>,
    pub fixture: Fixture,
    /// Replaces the fixture's placeholder URLs; without it the placeholders are served.
    pub download_urls: Option<DownloadUrlFactory>,
    /// Maximum difference between `x-acs-date` and the server clock; 15 minutes at Aliyun.
    pub max_clock_skew: TimeDelta,
}

impl FakeRdsConfig {
    /// Returns a config with test credentials and the given fixture.
    pub fn new(fixture: Fixture) -> Self {
        Self {
            access_key_id: "LTAI-test-access-key".into(),
            access_key_secret: "test-access-key-secret".into(),
            security_token: None,
            fixture,
            download_urls: None,
            max_clock_skew: TimeDelta::minutes(15),
        }
    }
}

/// An error document as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Returns `Throttling.User` with status 400, as Aliyun returns to a caller over its rate limit.
    pub fn throttling() -> Self {
        Self::new(
            400,
            "Throttling.User",
            "Request was denied due to user flow control.",
        )
    }
}

/// A request the fake received, whatever its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    pub action: String,
    /// Decoded query parameters.
    pub params: BTreeMap<String, String>,
    /// `None` when the call succeeded, otherwise the error code returned.
    pub error_code: Option<String>,
}

struct ServerState {
    config: FakeRdsConfig,
    catalog: Catalog,
    mutable: Mutex<Mutable>,
}

#[derive(Default)]
struct Mutable {
    seen_nonces: HashSet<String>,
    scripted_failures: VecDeque<ApiError>,
    calls: Vec<RecordedCall>,
    next_request_number: u64,
}

/// A running fake; the server stops when this value is dropped.
pub struct FakeRds {
    address: SocketAddr,
    state: Arc<ServerState>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeRds {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start(config: FakeRdsConfig) -> anyhow::Result<Self> {
        let catalog = Catalog::load(config.fixture.json())?;
        let state = Arc::new(ServerState {
            config,
            catalog,
            mutable: Mutex::new(Mutable::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "fake rds server stopped with an error");
            }
        });
        Ok(Self {
            address,
            state,
            shutdown: Some(shutdown),
        })
    }

    /// Returns the endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns `127.0.0.1:<port>`, the endpoint without its scheme.
    pub fn authority(&self) -> String {
        self.address.to_string()
    }

    pub fn config(&self) -> &FakeRdsConfig {
        &self.state.config
    }

    /// Returns the backups of the fixture in the order the fake lists them (newest first).
    pub fn fixture_backups(&self) -> Vec<BackupRef> {
        self.state.catalog.backups()
    }

    /// Makes the next `count` correctly signed requests fail with `Throttling.User`.
    pub fn throttle_next(&self, count: usize) {
        self.fail_next(count, ApiError::throttling());
    }

    /// Makes the next `count` correctly signed requests fail with `error`.
    pub fn fail_next(&self, count: usize, error: ApiError) {
        let mut mutable = lock(&self.state);
        mutable
            .scripted_failures
            .extend(std::iter::repeat_n(error, count));
    }

    /// Returns every request received so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.state).calls.clone()
    }
}

impl Drop for FakeRds {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn lock(state: &ServerState) -> MutexGuard<'_, Mutable> {
    // A test that panicked while holding the lock leaves the data usable for the next assertion.
    state
        .mutable
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn decode_query(uri: &Uri) -> Vec<(String, String)> {
    let decode = |text: &str| percent_decode_str(text).decode_utf8_lossy().into_owned();
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn error_response(error: &ApiError, request_id: &str) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "RequestId": request_id,
        "HostId": "rds.aliyuncs.com",
        "Code": error.code,
        "Message": error.message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", error.code),
    });
    (
        status,
        [("content-type", "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = decode_query(&uri);
    let params: BTreeMap<String, String> = query.iter().cloned().collect();
    let action = headers
        .get("x-acs-action")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| params.get("Action").cloned())
        .unwrap_or_default();

    let mut mutable = lock(&state);
    mutable.next_request_number += 1;
    let request_id = format!("FAKE-RDS-{:08}", mutable.next_request_number);

    let outcome = answer(
        &state,
        &mut mutable,
        &method,
        &uri,
        &headers,
        &body,
        &query,
        &params,
        &action,
        &request_id,
    );
    let error_code = outcome.as_ref().err().map(|error| error.code.clone());
    mutable.calls.push(RecordedCall {
        action,
        params,
        error_code,
    });
    drop(mutable);

    match outcome {
        Ok(document) => (
            [("content-type", "application/json;charset=utf-8")],
            document.to_string(),
        )
            .into_response(),
        Err(error) => error_response(&error, &request_id),
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    state: &ServerState,
    mutable: &mut Mutable,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    query: &[(String, String)],
    params: &BTreeMap<String, String>,
    action: &str,
    request_id: &str,
) -> Result<serde_json::Value, ApiError> {
    let config = &state.config;
    let verifier = Verifier {
        access_key_id: &config.access_key_id,
        access_key_secret: &config.access_key_secret,
        security_token: config.security_token.as_deref(),
        max_clock_skew: config.max_clock_skew,
    };
    let incoming = IncomingRequest {
        method: method.as_str(),
        path: uri.path(),
        query,
        headers,
        body,
    };
    verifier.verify(&incoming, &mut mutable.seen_nonces, Utc::now())?;

    if let Some(failure) = mutable.scripted_failures.pop_front() {
        return Err(failure);
    }
    let version = headers
        .get("x-acs-version")
        .and_then(|value| value.to_str().ok());
    if version != Some("2014-08-15") {
        return Err(ApiError::new(
            400,
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    match action {
        "DescribeBackups" => {
            state
                .catalog
                .describe_backups(params, config.download_urls.as_ref(), request_id)
        }
        _ => Err(ApiError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}
