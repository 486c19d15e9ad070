//! S3Store error mapping for faults moto cannot produce: a body cut short, a 503 with an S3
//! error document, and a refused connection. A scripted HTTP server on 127.0.0.1 sends each
//! reply once; the client makes one attempt so that each reply is seen as sent.

use backup_bridge::storage::s3::S3Store;
use backup_bridge::storage::{ErrorKind, ObjectSink, ObjectSource, PutOptions};
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a server that sends `reply` to every request and returns its URL.
async fn scripted_server(reply: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let _ = socket.write_all(&reply).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// Reads one request head and its `Content-Length` body.
async fn read_request(socket: &mut TcpStream) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        let Ok(count) = socket.read(&mut buffer).await else {
            return;
        };
        if count == 0 {
            return;
        }
        received.extend_from_slice(&buffer[..count]);
        if let Some(position) = received.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    let content_length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body_received = received.len() - head_end;
    while body_received < content_length {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(count) => body_received += count,
        }
    }
}

fn store_at(endpoint: &str) -> S3Store {
    let config = testkit::aws::sdk_config(endpoint);
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    S3Store::new(aws_sdk_s3::Client::from_conf(s3_config), "faults")
}

#[tokio::test]
async fn body_cut_short_is_transient() {
    let mut reply =
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"abc\"\r\nConnection: close\r\n\r\n"
            .to_vec();
    reply.extend_from_slice(&[7u8; 100]);
    let store = store_at(&scripted_server(reply).await);

    let (info, mut stream) = ObjectSource::get(&store, "mysql/cut.bin", None)
        .await
        .unwrap();
    assert_eq!(info.size, 1000);
    let mut received = 0;
    let error = loop {
        match stream.next().await {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(error)) => break error,
            None => panic!("stream ended cleanly after {received} of 1000 bytes"),
        }
    };
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    assert_eq!(error.operation, "GetObject");
    assert_eq!(error.location, "s3://faults/mysql/cut.bin");
    assert!(received <= 100);
    assert!(
        !error.message.contains('{'),
        "the message carries no Debug output: {error}"
    );
    assert!(
        stream.next().await.is_none(),
        "the stream ends after its first error"
    );
}

#[tokio::test]
async fn slow_down_reply_is_transient() {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                <Message>Please reduce your request rate.</Message><RequestId>REQ123</RequestId></Error>";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n\
         x-amz-request-id: REQ123\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let store = store_at(&scripted_server(reply.into_bytes()).await);

    let error = store
        .put(
            "mysql/slow.bin",
            Bytes::from_static(b"x"),
            &PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.code.as_deref(), Some("SlowDown"));
    assert_eq!(error.message, "Please reduce your request rate.");
    assert_eq!(error.request_id.as_deref(), Some("REQ123"));
}

#[tokio::test]
async fn access_denied_reply_is_permanent() {
    let body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
    let reply = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let store = store_at(&scripted_server(reply.into_bytes()).await);

    let error = store
        .create_multipart("mysql/denied.bin", &PutOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Permanent, "{error}");
    assert_eq!(error.code.as_deref(), Some("AccessDenied"));
    assert_eq!(error.operation, "CreateMultipartUpload");
}

#[tokio::test]
async fn refused_connection_is_transient() {
    // Bind and drop a listener so that the port is known to have no server.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = store_at(&format!("http://127.0.0.1:{port}"));

    let error = ObjectSource::head(&store, "mysql/any.bin")
        .await
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    assert_eq!(error.operation, "HeadObject");
    assert_eq!(error.code, None);
    assert!(error.message.contains("Connection refused"), "{error}");
    assert!(
        !error.message.contains('{'),
        "the message carries no Debug output: {error}"
    );
}
