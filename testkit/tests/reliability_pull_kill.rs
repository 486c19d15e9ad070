//! The `aliyun-backup-pull` binary killed with SIGKILL mid-copy and then invoked again. The
//! binary runs its real `lambda_runtime` loop against a minimal Runtime API served here on
//! 127.0.0.1, which hands out one event and records the reply. The second process must finish
//! a byte-identical object; it must never complete a corrupt one, and it leaves no multipart
//! upload of its own open.

mod reliability_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, WECOM_KEY, sample_bytes, with_wecom};
use testkit::paths;
use tokio::sync::watch;

use reliability_support::{assert_s3_identical, s3_open_uploads, set};

const MIB: u64 = 1024 * 1024;

/// What the Runtime API hands out and what it received back.
struct RuntimeState {
    event: Value,
    handed_out: Mutex<bool>,
    reply: watch::Sender<Option<(bool, String)>>,
}

/// Serves one invocation of `event`; later `next` requests wait forever, as Lambda's do
/// while no event is queued.
async fn start_runtime_api(event: Value) -> (SocketAddr, Arc<RuntimeState>) {
    let state = Arc::new(RuntimeState {
        event,
        handed_out: Mutex::new(false),
        reply: watch::Sender::new(None),
    });
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(
                |State(state): State<Arc<RuntimeState>>, body: String| async move {
                    state.reply.send_replace(Some((true, body)));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(
                |State(state): State<Arc<RuntimeState>>, body: String| async move {
                    state.reply.send_replace(Some((false, body)));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(
                |State(state): State<Arc<RuntimeState>>, body: String| async move {
                    state
                        .reply
                        .send_replace(Some((false, format!("init error: {body}"))));
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, state)
}

async fn next(State(state): State<Arc<RuntimeState>>) -> (HeaderMap, String) {
    let first = {
        let mut handed_out = state.handed_out.lock().unwrap();
        !std::mem::replace(&mut *handed_out, true)
    };
    if !first {
        std::future::pending::<()>().await;
    }
    let deadline = chrono::Utc::now().timestamp_millis() + 600_000;
    let mut headers = HeaderMap::new();
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("kill-test-request"),
    );
    headers.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:pull"),
    );
    (headers, state.event.to_string())
}

fn pull_binary() -> PathBuf {
    paths::workspace_root()
        .unwrap()
        .join("target/debug/aliyun-backup-pull")
}

/// Starts the pull binary against the Runtime API at `runtime`.
fn spawn_pull(env: &[(String, String)], runtime: SocketAddr, log: &std::fs::File) -> Child {
    let binary = pull_binary();
    assert!(
        binary.exists(),
        "{} is missing; build it with `cargo test --workspace --no-run`",
        binary.display()
    );
    Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "aliyun-backup-pull")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        // The self-invoke must never leave the machine; nothing listens on port 9.
        .env("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn sigkill_mid_copy_then_invoke_again_ends_clean() {
    let clouds = LocalClouds::start("rel-pull-sigkill").await.unwrap();
    let size = 16 * MIB + 9;
    let backup = clouds.seed_aliyun_backup(size, 31).await.unwrap();
    let bytes = sample_bytes(usize::try_from(size).unwrap(), 31);
    let moto: SocketAddr = clouds
        .moto_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let s3_proxy = FaultProxy::start(moto).unwrap();
    // Part 2 is held in the proxy, so the process is killed with part 1 stored and the upload
    // open.
    s3_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains("partNumber=2"),
        Action::Delay(std::time::Duration::from_secs(600)),
    ));
    let mut env = with_wecom(
        clouds.pull_env(&backup),
        &clouds.wecom.base_url(),
        WECOM_KEY,
    );
    set(&mut env, "AWS_ENDPOINT_URL_S3", s3_proxy.url());
    let event = json!({ "instance_id": backup.instance_id, "backup_id": backup.backup_id });
    let log_path =
        std::env::temp_dir().join(format!("rel-pull-sigkill-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();

    let (runtime, first_state) = start_runtime_api(event.clone()).await;
    let mut killed = spawn_pull(&env, runtime, &log);
    loop {
        let seen = s3_proxy.requests().len();
        s3_proxy.wait_for_requests(seen + 1).await;
        let holding_part_two = s3_proxy
            .requests()
            .iter()
            .any(|request| request.path_and_query.contains("partNumber=2"));
        if holding_part_two {
            break;
        }
    }
    // `Child::kill` sends SIGKILL on Unix.
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(
        first_state.reply.borrow().is_none(),
        "the killed run replied"
    );
    s3_proxy.clear_rules();
    let orphaned = s3_open_uploads(&clouds.bucket).await;
    assert_eq!(orphaned.len(), 1, "{orphaned:?}");

    let (runtime, second_state) = start_runtime_api(event).await;
    let mut again = spawn_pull(&env, runtime, &log);
    let mut replies = second_state.reply.subscribe();
    let reply = replies
        .wait_for(Option::is_some)
        .await
        .unwrap()
        .clone()
        .unwrap();
    again.kill().unwrap();
    again.wait().unwrap();

    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(reply.0, "second run failed: {}\n{log_text}", reply.1);
    let result: Value = serde_json::from_str(&reply.1).unwrap();
    assert_eq!(result["backups"][0]["outcome"], "pulled", "{result}");
    assert_s3_identical(&clouds.bucket, &backup.expected_key, &bytes).await;
    // The run that completed the backup aborted the killed run's upload.
    assert_eq!(s3_open_uploads(&clouds.bucket).await, Vec::new());
    assert!(clouds.oss.pending_uploads(OSS_BUCKET).is_empty());
    assert!(
        clouds.wecom.messages().is_empty(),
        "{:?}",
        clouds.wecom.messages()
    );
}
