//! A fake AWS Lambda `Invoke` endpoint on 127.0.0.1 for tests and `make demo`.
//!
//! It serves `POST /2015-03-31/functions/{name}/invocations` the way Lambda answers
//! `aws-sdk-lambda`: a SigV4 `Authorization` header for the `lambda` service is required, an
//! unknown function gets 404 `ResourceNotFoundException`, an asynchronous payload over 256 KiB gets
//! 413 `RequestEntityTooLargeException`, and an accepted `Event` invocation gets 202 with an empty
//! body. Only `Event` and `DryRun` invocations are served: nothing runs the function here. Tests
//! read what was accepted and can queue throttling replies.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Lambda's limit on the payload of an asynchronous invocation.
pub const EVENT_PAYLOAD_MAX_BYTES: usize = 256 * 1024;

/// One invocation the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function_name: String,
    /// `Event` or `DryRun`.
    pub invocation_type: String,
    pub payload: Value,
}

/// A reply the fake gives instead of accepting the next invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequestsException`.
    Throttled,
    /// 500 `ServiceException`.
    ServiceError,
}

#[derive(Default)]
struct Recorded {
    accepted: Vec<Invocation>,
    faults: VecDeque<Fault>,
    /// Every request that reached the handler, accepted or not.
    requests: usize,
}

struct Shared {
    functions: HashSet<String>,
    recorded: Mutex<Recorded>,
}

/// The running fake; it stops when dropped.
pub struct FakeLambda {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: oneshot::Sender<()>,
}

impl FakeLambda {
    /// Starts the fake with the functions it knows by name.
    pub async fn start(functions: &[&str]) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            functions: functions.iter().map(|name| name.to_string()).collect(),
            recorded: Mutex::new(Recorded::default()),
        });
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The endpoint URL to give the SDK (`endpoint_url`) or `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The invocations accepted so far, oldest first.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.lock().accepted.clone()
    }

    /// How many requests reached the fake, including rejected ones.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Makes the next invocations fail with `faults`, in order.
    pub fn fail_next(&self, faults: &[Fault]) {
        self.lock().faults.extend(faults.iter().copied());
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        lock(&self.shared)
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, Recorded> {
    shared
        .recorded
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Lambda's error reply: the type in `x-amzn-ErrorType` and a JSON body.
fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-ErrorType", error_type),
            ("content-type", "application/json"),
        ],
        json!({ "Type": "User", "message": message }).to_string(),
    )
        .into_response()
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    lock(&shared).requests += 1;
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if !authorization.starts_with("AWS4-HMAC-SHA256 Credential=")
        || !authorization.contains("/lambda/aws4_request")
    {
        return error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "request is not signed with SigV4 for the lambda service",
        );
    }
    // The SDK sends the name as given: a plain name, or an ARN whose last segment is the name.
    let function = name.rsplit(':').next().unwrap_or(&name).to_string();
    if !shared.functions.contains(&function) {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    }
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_string();
    if invocation_type != "Event" && invocation_type != "DryRun" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "the fake serves only Event and DryRun invocations",
        );
    }
    if body.len() > EVENT_PAYLOAD_MAX_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            &format!(
                "{} byte payload is over the {EVENT_PAYLOAD_MAX_BYTES} byte limit",
                body.len()
            ),
        );
    }
    let payload = match serde_json::from_slice::<Value>(&body) {
        Ok(payload) => payload,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "could not parse request body into json",
            );
        }
    };
    let mut recorded = lock(&shared);
    if let Some(fault) = recorded.faults.pop_front() {
        return match fault {
            Fault::Throttled => error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            ),
            Fault::ServiceError => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "the fake was told to fail",
            ),
        };
    }
    recorded.accepted.push(Invocation {
        function_name: function,
        invocation_type: invocation_type.clone(),
        payload,
    });
    let status = if invocation_type == "DryRun" {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    };
    status.into_response()
}
