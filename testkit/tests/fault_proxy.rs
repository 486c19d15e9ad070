//! Proves each fault proxy action with a plain reqwest client against a small axum upstream,
//! all over real HTTP on 127.0.0.1.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};

/// The requests the upstream finished handling, as "METHOD path?query".
#[derive(Clone, Default)]
struct Upstream {
    handled: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn note(&self, method: &Method, uri: &Uri) {
        let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        self.handled
            .lock()
            .unwrap()
            .push(format!("{method} {target}"));
    }

    fn handled(&self) -> Vec<String> {
        self.handled.lock().unwrap().clone()
    }
}

/// Echoes the request body and reports the method, target and selected headers it received.
async fn echo(
    State(upstream): State<Upstream>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    upstream.note(&method, &uri);
    let seen = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    (
        [
            ("x-seen-method", method.to_string()),
            ("x-seen-target", target),
            ("x-seen-host", seen("host")),
            ("x-seen-meta", seen("x-amz-meta-origin")),
            ("x-seen-transfer-encoding", seen("transfer-encoding")),
        ],
        body,
    )
        .into_response()
}

/// Returns `size` pattern bytes with a `Content-Length`.
async fn large(State(upstream): State<Upstream>, uri: Uri, Path(size): Path<usize>) -> Vec<u8> {
    upstream.note(&Method::GET, &uri);
    pattern(size)
}

/// Returns `size` pattern bytes as a chunked stream of 100,000-byte pieces.
async fn chunked(State(upstream): State<Upstream>, uri: Uri, Path(size): Path<usize>) -> Body {
    upstream.note(&Method::GET, &uri);
    let pieces: Vec<Result<Vec<u8>, io::Error>> = pattern(size)
        .chunks(100_000)
        .map(|piece| Ok(piece.to_vec()))
        .collect();
    Body::from_stream(futures::stream::iter(pieces))
}

/// Deterministic bytes that differ from their neighbours, so a lost or repeated span shows.
fn pattern(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

async fn start_upstream() -> (SocketAddr, Upstream) {
    let upstream = Upstream::default();
    let app = Router::new()
        .route("/echo", any(echo))
        .route("/large/{size}", get(large))
        .route("/chunked/{size}", get(chunked))
        .layer(DefaultBodyLimit::disable())
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, upstream)
}

async fn start() -> (FaultProxy, Upstream) {
    let (addr, upstream) = start_upstream().await;
    (FaultProxy::start(addr).unwrap(), upstream)
}

fn client() -> reqwest::Client {
    // `no_proxy` keeps any proxy variables in the environment from redirecting test traffic.
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reads a reply body to its end or its first error.
async fn read_body(mut response: reqwest::Response) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut received = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => return (received, None),
            Err(error) => return (received, Some(error)),
        }
    }
}

/// Finds the I/O error kind at the root of an error chain, if there is one.
fn io_kind(error: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            return Some(io_error.kind());
        }
        current = error.source();
    }
    None
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn forward_preserves_method_target_and_headers() {
    let (proxy, _upstream) = start().await;
    let virtual_host = format!(
        "backups.oss-cn-hangzhou.aliyuncs.com:{}",
        proxy.addr().port()
    );

    let response = client()
        .request(
            Method::PATCH,
            format!("{}/echo?uploadId=a%2Bb&partNumber=3", proxy.url()),
        )
        .header("Host", &virtual_host)
        .header("x-amz-meta-origin", "Fault Proxy")
        .body("hello")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-seen-method"), "PATCH");
    assert_eq!(
        header(&response, "x-seen-target"),
        "/echo?uploadId=a%2Bb&partNumber=3"
    );
    assert_eq!(header(&response, "x-seen-host"), virtual_host);
    assert_eq!(header(&response, "x-seen-meta"), "Fault Proxy");
    assert_eq!(response.bytes().await.unwrap(), "hello");
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].path_and_query, "/echo?uploadId=a%2Bb&partNumber=3");
    assert_eq!(seen[0].status, Some(200));
    assert_eq!(seen[0].action_taken, Action::Forward);
}

#[tokio::test]
async fn forward_streams_multi_mib_bodies_both_ways() {
    let (proxy, _upstream) = start().await;
    let client = client();
    let upload = pattern(9 * 1024 * 1024 + 17);

    let echoed = client
        .put(format!("{}/echo", proxy.url()))
        .body(upload.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(echoed == upload, "echoed body differs from the upload");

    let sized = client
        .get(format!("{}/large/{}", proxy.url(), 7 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&sized, "content-length"),
        (7 * 1024 * 1024).to_string()
    );
    assert!(sized.bytes().await.unwrap() == pattern(7 * 1024 * 1024));

    let streamed = client
        .get(format!("{}/chunked/{}", proxy.url(), 5 * 1024 * 1024 + 3))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&streamed, "transfer-encoding"), "chunked");
    assert!(streamed.bytes().await.unwrap() == pattern(5 * 1024 * 1024 + 3));
}

#[tokio::test]
async fn forward_passes_chunked_uploads() {
    let (proxy, _upstream) = start().await;
    let upload = pattern(3 * 1024 * 1024);
    let pieces: Vec<Result<Vec<u8>, io::Error>> = upload
        .chunks(65_537)
        .map(|piece| Ok(piece.to_vec()))
        .collect();

    let response = client()
        .put(format!("{}/echo", proxy.url()))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();

    assert_eq!(header(&response, "x-seen-transfer-encoding"), "chunked");
    assert!(response.bytes().await.unwrap() == upload);
}

#[tokio::test]
async fn nth_rule_acts_only_on_kth_match() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("GET").path_contains("/echo").nth(2),
        Action::respond_xml(500, "<Error><Code>InternalError</Code></Error>"),
    ));
    let client = client();

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = client
            .get(format!("{}/echo", proxy.url()))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // A PUT does not match the filter, so it neither counts nor triggers the rule.
    let put = client
        .put(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(statuses, [200, 500, 200]);
    assert_eq!(put.status(), 200);
    assert_eq!(upstream.handled().len(), 3);
    let actions: Vec<Action> = proxy
        .requests()
        .into_iter()
        .map(|r| r.action_taken)
        .collect();
    assert_eq!(actions[0], Action::Forward);
    assert!(matches!(actions[1], Action::Respond { status: 500, .. }));
    assert_eq!(actions[2], Action::Forward);
}

#[tokio::test]
async fn times_rule_acts_on_first_n_matches() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(Match::any().times(2), Action::s3_slow_down()));
    let client = client();

    let first = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 503);
    assert!(
        first
            .text()
            .await
            .unwrap()
            .contains("<Code>SlowDown</Code>")
    );
    let second = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 503);
    let third = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(third.status(), 200);

    assert_eq!(upstream.handled(), ["GET /echo"]);
}

#[tokio::test]
async fn respond_answers_without_reaching_upstream() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("PUT").header("x-amz-meta-origin").nth(1),
        Action::Respond {
            status: 403,
            headers: vec![("x-oss-request-id".to_owned(), "FAULT".to_owned())],
            body: Bytes::from_static(b"<Error><Code>AccessDenied</Code></Error>"),
        },
    ));
    let client = client();

    let refused = client
        .put(format!("{}/echo", proxy.url()))
        .header("x-amz-meta-origin", "test")
        .body(pattern(2 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(header(&refused, "x-oss-request-id"), "FAULT");
    assert_eq!(
        refused.text().await.unwrap(),
        "<Error><Code>AccessDenied</Code></Error>"
    );
    assert!(upstream.handled().is_empty());

    // The request body was read to its end, so the same connection carries the next request.
    let next = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    assert_eq!(upstream.handled(), ["GET /echo"]);
    let seen = proxy.requests();
    assert_eq!(seen[0].status, Some(403));
    assert_eq!(seen[0].upstream_status, None);
}

#[tokio::test]
async fn drop_reply_reaches_upstream_but_client_errors() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(Match::method("PUT").nth(1), Action::DropReply));
    let client = client();

    let outcome = client
        .put(format!("{}/echo?partNumber=1", proxy.url()))
        .body(pattern(1024 * 1024))
        .send()
        .await;

    let error = outcome.expect_err("the client must see no reply");
    assert!(!error.is_status(), "unexpected error: {error:?}");
    assert_eq!(upstream.handled(), ["PUT /echo?partNumber=1"]);
    let seen = proxy.requests();
    assert_eq!(seen[0].upstream_status, Some(200));
    assert_eq!(seen[0].status, None);
    assert_eq!(seen[0].action_taken, Action::DropReply);

    let retry = client
        .put(format!("{}/echo?partNumber=1", proxy.url()))
        .body("retry")
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(upstream.handled().len(), 2);
}

#[tokio::test]
async fn truncate_response_ends_body_after_n_bytes() {
    let (proxy, _upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("GET"),
        Action::TruncateResponse { after: 300_001 },
    ));
    let size = 4 * 1024 * 1024;

    let response = client()
        .get(format!("{}/large/{size}", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), size.to_string());
    let (received, error) = read_body(response).await;

    let error = error.expect("a short body must end in an error");
    assert!(
        error.is_body() || error.is_decode(),
        "unexpected error: {error:?}"
    );
    assert_eq!(received.len(), 300_001);
    assert!(received == pattern(size)[..300_001]);
}

#[tokio::test]
async fn truncate_response_cuts_chunked_bodies() {
    let (proxy, _upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("GET"),
        Action::TruncateResponse { after: 250_000 },
    ));

    let response = client()
        .get(format!("{}/chunked/{}", proxy.url(), 1024 * 1024))
        .send()
        .await
        .unwrap();
    let (received, error) = read_body(response).await;

    assert!(error.is_some(), "a cut chunked body must end in an error");
    // The cut counts chunk framing, so slightly fewer payload bytes arrive.
    assert!(
        received.len() < 250_000,
        "received {} bytes",
        received.len()
    );
    assert!(
        received.len() > 200_000,
        "received {} bytes",
        received.len()
    );
    assert!(received == pattern(1024 * 1024)[..received.len()]);
}

#[tokio::test]
async fn reset_after_response_bytes_breaks_download() {
    let (proxy, _upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::any().path_prefix("/large/"),
        Action::ResetAfterResponseBytes(100_000),
    ));
    let size = 8 * 1024 * 1024;

    let response = client()
        .get(format!("{}/large/{size}", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "content-length"), size.to_string());
    let (received, error) = read_body(response).await;

    let error = error.expect("a reset body must end in an error");
    assert_eq!(
        io_kind(&error),
        Some(io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert!(
        received.len() <= 100_000,
        "received {} bytes",
        received.len()
    );
    assert!(received == pattern(size)[..received.len()]);
}

#[tokio::test]
async fn reset_after_request_bytes_breaks_upload() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("PUT"),
        Action::ResetAfterRequestBytes(1024 * 1024),
    ));

    let outcome = client()
        .put(format!("{}/echo?partNumber=3", proxy.url()))
        .body(pattern(16 * 1024 * 1024))
        .send()
        .await;

    let error = outcome.expect_err("a reset upload must fail");
    let kind = io_kind(&error);
    assert!(
        matches!(
            kind,
            Some(io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
        ),
        "unexpected error: {error:?}"
    );
    // The upstream received only part of the body, so it never handled the request.
    assert!(upstream.handled().is_empty());
    let seen = proxy.requests();
    assert_eq!(seen[0].status, None);
    assert_eq!(
        seen[0].action_taken,
        Action::ResetAfterRequestBytes(1024 * 1024)
    );
}

#[tokio::test]
async fn delay_lets_a_later_request_overtake() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::any().path_contains("slow"),
        Action::Delay(Duration::from_secs(2)),
    ));
    let client = client();

    let slow_client = client.clone();
    let slow_url = format!("{}/echo?slow", proxy.url());
    let slow = tokio::spawn(async move { slow_client.get(slow_url).send().await });
    proxy.wait_for_requests(1).await;
    let fast = client
        .get(format!("{}/echo?fast", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fast.status(), 200);
    assert_eq!(upstream.handled(), ["GET /echo?fast"]);

    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), 200);
    assert_eq!(upstream.handled(), ["GET /echo?fast", "GET /echo?slow"]);
}

#[tokio::test]
async fn cleared_rules_forward_again() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(Match::any(), Action::s3_slow_down()));
    let client = client();
    let throttled = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(throttled.status(), 503);

    proxy.clear_rules();
    let passed = client
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(passed.status(), 200);
    assert_eq!(upstream.handled().len(), 1);
}

#[tokio::test]
async fn unreachable_upstream_gives_bad_gateway() {
    let port = testkit::free_port().unwrap();
    let proxy = FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();

    let response = client()
        .get(format!("{}/echo", proxy.url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 502);
}

#[test]
fn start_rejects_non_loopback_upstream() {
    let error = FaultProxy::start(SocketAddr::from(([192, 0, 2, 1], 80))).err();

    let message = error
        .expect("a non-loopback upstream must be rejected")
        .to_string();
    assert!(message.contains("192.0.2.1:80"), "{message}");
}

#[tokio::test]
async fn dropped_proxy_stops_listening() {
    let (proxy, _upstream) = start().await;
    let addr = proxy.addr();

    drop(proxy);

    let connected = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        connected.err().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
}

#[tokio::test]
async fn forward_handles_head_replies_without_body() {
    let (proxy, upstream) = start().await;
    let client = client();

    let head = client
        .head(format!("{}/large/5000", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), "5000");
    assert!(head.bytes().await.unwrap().is_empty());

    // The HEAD reply carried no body, so the next reply on the connection starts cleanly.
    let get = client
        .get(format!("{}/large/5000", proxy.url()))
        .send()
        .await
        .unwrap();
    assert!(get.bytes().await.unwrap() == pattern(5000));
    assert_eq!(upstream.handled().len(), 2);
}

#[tokio::test]
async fn expired_link_rejects_resumed_range_request() {
    let (proxy, upstream) = start().await;
    proxy.add_rule(Rule::new(
        Match::method("GET").header("Range"),
        Action::expired_link(),
    ));
    let client = client();

    let first = client
        .get(format!("{}/large/1000", proxy.url()))
        .send()
        .await
        .unwrap();
    let resumed = client
        .get(format!("{}/large/1000", proxy.url()))
        .header("Range", "bytes=500-")
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), 200);
    assert_eq!(resumed.status(), 403);
    let body = resumed.text().await.unwrap();
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("Request has expired."), "{body}");
    assert_eq!(upstream.handled().len(), 1);
}

#[tokio::test]
async fn forward_relays_100_continue() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let (proxy, upstream) = start().await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr()).await.unwrap();
    let head = "PUT /echo HTTP/1.1\r\nHost: upstream.test\r\nContent-Length: 5\r\n\
                Expect: 100-continue\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(stream);

    let mut interim = String::new();
    reader.read_line(&mut interim).await.unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    reader.read_line(&mut blank).await.unwrap();
    assert_eq!(blank, "\r\n");
    reader.get_mut().write_all(b"hello").await.unwrap();
    let mut reply = String::new();
    reader.read_to_string(&mut reply).await.unwrap();

    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhello"), "{reply}");
    assert_eq!(upstream.handled(), ["PUT /echo"]);
}
