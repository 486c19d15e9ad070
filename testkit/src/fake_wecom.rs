//! A fake WeCom group robot on 127.0.0.1 for tests and `make demo`.
//!
//! It serves `POST /cgi-bin/webhook/send?key=<key>` like the real robot: every reply is HTTP 200
//! with an `errcode`. It checks the JSON shape per `msgtype`, rejects content over the byte
//! limits with 40058, returns 93000 for an unknown key and 45009 once a key has had 20 messages
//! in a rolling minute. The clock behind the rolling minute can be moved forward, so tests need
//! not wait a real minute. Accepted messages are recorded for tests to read.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// `errcode` for an invalid message type.
pub const ERRCODE_INVALID_MSGTYPE: i64 = 40008;
/// `errcode` for an invalid parameter: a missing field, a wrong type or content over the limit.
pub const ERRCODE_INVALID_PARAMETER: i64 = 40058;
/// `errcode` for too many messages in a minute.
pub const ERRCODE_RATE_LIMITED: i64 = 45009;
/// `errcode` for an unknown webhook key.
pub const ERRCODE_INVALID_KEY: i64 = 93000;

const MARKDOWN_MAX_BYTES: usize = 4096;
const TEXT_MAX_BYTES: usize = 2048;

/// The rate limit the fake robot applies to each key.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub messages: usize,
    pub window: Duration,
}

impl Default for RateLimit {
    /// WeCom's limit: 20 messages a minute per robot.
    fn default() -> Self {
        Self {
            messages: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// One message the fake robot accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub key: String,
    /// `text` or `markdown`.
    pub msgtype: String,
    pub content: String,
    pub mentioned_list: Vec<String>,
    pub mentioned_mobile_list: Vec<String>,
}

/// One request that the fake robot rejected with a non-zero `errcode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub errcode: i64,
    pub errmsg: String,
    /// How many messages (for all keys) had been accepted when this request was rejected.
    pub accepted_before: usize,
}

#[derive(Default)]
struct Robot {
    accepted: Vec<ReceivedMessage>,
    rejected: Vec<Rejection>,
    /// Clock readings of accepted messages per key, oldest first.
    recent: HashMap<String, VecDeque<Instant>>,
    /// How far the clock was moved forward.
    clock_offset: Duration,
}

struct Shared {
    keys: HashSet<String>,
    limit: RateLimit,
    robot: Mutex<Robot>,
    rejected: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Robot> {
        // A panic while holding the lock leaves plain data behind, which is still usable.
        self.robot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake robot; it stops when dropped.
pub struct FakeWecom {
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeWecom {
    /// Starts a robot that accepts `keys`, with WeCom's rate limit.
    pub async fn start(keys: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_limit(keys, RateLimit::default()).await
    }

    /// Starts a robot that accepts `keys`, with the given rate limit.
    pub async fn start_with_limit(keys: &[&str], limit: RateLimit) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            keys: keys.iter().map(|key| key.to_string()).collect(),
            limit,
            robot: Mutex::new(Robot::default()),
            rejected: Notify::new(),
        });
        let app = Router::new()
            .route("/cgi-bin/webhook/send", post(send))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::error!(%error, "fake wecom robot stopped with an error");
            }
        });
        Ok(Self {
            address,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// Returns the base URL to configure as `WECOM_BASE_URL`, e.g. `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.lock().accepted.clone()
    }

    /// Returns every rejected request, in arrival order.
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejected.clone()
    }

    /// Waits until at least `count` requests have been rejected.
    pub async fn wait_for_rejections(&self, count: usize) {
        loop {
            // Registering before the check means a rejection between the two cannot be missed.
            let notified = self.shared.rejected.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().rejected.len() >= count {
                return;
            }
            notified.await;
        }
    }

    /// Moves the rate limiter's clock forward, e.g. past the rolling minute.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().clock_offset += by;
    }

    /// Renders the accepted messages as plain text for a terminal: font tags removed, mentions
    /// listed.
    pub fn render_text(&self) -> String {
        let mut output = String::new();
        for (index, message) in self.messages().iter().enumerate() {
            output.push_str(&format!(
                "--- message {} ({}) ---\n",
                index + 1,
                message.msgtype
            ));
            output.push_str(&strip_font_tags(&message.content));
            if !output.ends_with('\n') {
                output.push('\n');
            }
            if !message.mentioned_list.is_empty() {
                output.push_str(&format!(
                    "mentions: {}\n",
                    message.mentioned_list.join(", ")
                ));
            }
            if !message.mentioned_mobile_list.is_empty() {
                output.push_str(&format!(
                    "mentions by mobile: {}\n",
                    message.mentioned_mobile_list.join(", ")
                ));
            }
        }
        output
    }
}

impl Drop for FakeWecom {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn strip_font_tags(content: &str) -> String {
    let mut output = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("<font") {
        output.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    output.push_str(rest);
    output.replace("</font>", "")
}

fn reply(errcode: i64, errmsg: &str) -> Json<Value> {
    Json(json!({ "errcode": errcode, "errmsg": errmsg }))
}

async fn send(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Json<Value> {
    let outcome = match query.get("key").filter(|key| shared.keys.contains(*key)) {
        None => Err(rejection(ERRCODE_INVALID_KEY, "invalid webhook url")),
        Some(key) => parse_message(key, &body).and_then(|message| accept(&shared, message)),
    };
    match outcome {
        Ok(()) => reply(0, "ok"),
        Err(mut rejection) => {
            let response = reply(rejection.errcode, &rejection.errmsg);
            let mut robot = shared.lock();
            rejection.accepted_before = robot.accepted.len();
            robot.rejected.push(rejection);
            drop(robot);
            shared.rejected.notify_waiters();
            response
        }
    }
}

fn accept(shared: &Shared, message: ReceivedMessage) -> Result<(), Rejection> {
    let mut robot = shared.lock();
    let now = Instant::now() + robot.clock_offset;
    let window = shared.limit.window;
    let recent = robot.recent.entry(message.key.clone()).or_default();
    while recent
        .front()
        .is_some_and(|sent| now.duration_since(*sent) >= window)
    {
        recent.pop_front();
    }
    if recent.len() >= shared.limit.messages {
        let errmsg = format!(
            "api freq out of limit: {} messages in {:?}",
            shared.limit.messages, window
        );
        return Err(rejection(ERRCODE_RATE_LIMITED, errmsg));
    }
    recent.push_back(now);
    robot.accepted.push(message);
    Ok(())
}

fn rejection(errcode: i64, errmsg: impl Into<String>) -> Rejection {
    Rejection {
        errcode,
        errmsg: errmsg.into(),
        accepted_before: 0,
    }
}

fn invalid(errmsg: impl Into<String>) -> Rejection {
    rejection(ERRCODE_INVALID_PARAMETER, errmsg)
}

fn parse_message(key: &str, body: &str) -> Result<ReceivedMessage, Rejection> {
    let value: Value =
        serde_json::from_str(body).map_err(|error| invalid(format!("invalid json: {error}")))?;
    let msgtype = value
        .get("msgtype")
        .and_then(Value::as_str)
        .ok_or_else(|| rejection(ERRCODE_INVALID_MSGTYPE, "missing msgtype"))?;
    let (limit, section) = match msgtype {
        "text" => (TEXT_MAX_BYTES, "text"),
        "markdown" => (MARKDOWN_MAX_BYTES, "markdown"),
        other => {
            return Err(rejection(
                ERRCODE_INVALID_MSGTYPE,
                format!("invalid message type {other}"),
            ));
        }
    };
    let object = value
        .get(section)
        .and_then(Value::as_object)
        .ok_or_else(|| invalid(format!("missing {section} object")))?;
    let content = object
        .get("content")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("missing {section}.content")))?;
    if content.is_empty() {
        return Err(invalid(format!("empty {section}.content")));
    }
    if content.len() > limit {
        return Err(invalid(format!(
            "{section}.content exceed max length {limit}"
        )));
    }
    let string_list = |field: &str| -> Result<Vec<String>, Rejection> {
        match object.get(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) if section == "text" => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(format!("{section}.{field} must hold strings"))),
            Some(_) => Err(invalid(format!("invalid {section}.{field}"))),
        }
    };
    Ok(ReceivedMessage {
        key: key.to_string(),
        msgtype: msgtype.to_string(),
        content: content.to_string(),
        mentioned_list: string_list("mentioned_list")?,
        mentioned_mobile_list: string_list("mentioned_mobile_list")?,
    })
}
