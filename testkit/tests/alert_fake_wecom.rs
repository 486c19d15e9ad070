//! The fake WeCom robot itself, driven with plain HTTP requests: shape checks, byte limits,
//! unknown keys and the rolling rate limit.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::fake_wecom::{
    ERRCODE_INVALID_KEY, ERRCODE_INVALID_MSGTYPE, ERRCODE_INVALID_PARAMETER, ERRCODE_RATE_LIMITED,
    FakeWecom, RateLimit,
};

const KEY: &str = "fake-robot-key";

async fn post(robot: &FakeWecom, key: &str, body: Value) -> i64 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/cgi-bin/webhook/send?key={key}", robot.base_url());
    let response = client.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    reply["errcode"].as_i64().unwrap()
}

fn markdown(content: &str) -> Value {
    json!({ "msgtype": "markdown", "markdown": { "content": content } })
}

#[tokio::test]
async fn records_accepted_messages_with_mentions() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let text = json!({
        "msgtype": "text",
        "text": { "content": "hello", "mentioned_list": ["@all"], "mentioned_mobile_list": ["13800000000"] }
    });

    assert_eq!(post(&robot, KEY, markdown("**hi**")).await, 0);
    assert_eq!(post(&robot, KEY, text).await, 0);

    let messages = robot.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].msgtype, "markdown");
    assert_eq!(messages[0].content, "**hi**");
    assert_eq!(messages[1].mentioned_list, vec!["@all".to_string()]);
    assert_eq!(
        messages[1].mentioned_mobile_list,
        vec!["13800000000".to_string()]
    );
}

#[tokio::test]
async fn unknown_key_gets_93000() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    assert_eq!(
        post(&robot, "other-key", markdown("hi")).await,
        ERRCODE_INVALID_KEY
    );
    assert!(robot.messages().is_empty());
}

#[tokio::test]
async fn content_limits_are_counted_in_bytes() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let text = |content: String| json!({ "msgtype": "text", "text": { "content": content } });

    assert_eq!(post(&robot, KEY, markdown(&"a".repeat(4096))).await, 0);
    assert_eq!(
        post(&robot, KEY, markdown(&"a".repeat(4097))).await,
        ERRCODE_INVALID_PARAMETER
    );
    // 1366 Chinese characters are 4098 bytes.
    assert_eq!(
        post(&robot, KEY, markdown(&"备".repeat(1366))).await,
        ERRCODE_INVALID_PARAMETER
    );
    assert_eq!(post(&robot, KEY, text("b".repeat(2048))).await, 0);
    assert_eq!(
        post(&robot, KEY, text("b".repeat(2049))).await,
        ERRCODE_INVALID_PARAMETER
    );
    assert_eq!(robot.messages().len(), 2);
}

#[tokio::test]
async fn malformed_messages_are_rejected() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let cases = [
        (
            json!({ "markdown": { "content": "x" } }),
            ERRCODE_INVALID_MSGTYPE,
        ),
        (
            json!({ "msgtype": "image", "image": {} }),
            ERRCODE_INVALID_MSGTYPE,
        ),
        (json!({ "msgtype": "markdown" }), ERRCODE_INVALID_PARAMETER),
        (
            json!({ "msgtype": "markdown", "markdown": { "content": 5 } }),
            ERRCODE_INVALID_PARAMETER,
        ),
        (
            json!({ "msgtype": "markdown", "markdown": { "content": "" } }),
            ERRCODE_INVALID_PARAMETER,
        ),
        (
            json!({ "msgtype": "text", "text": { "content": "x", "mentioned_list": "@all" } }),
            ERRCODE_INVALID_PARAMETER,
        ),
        (
            json!({ "msgtype": "text", "text": { "content": "x", "mentioned_mobile_list": [1] } }),
            ERRCODE_INVALID_PARAMETER,
        ),
    ];
    for (body, errcode) in cases {
        assert_eq!(post(&robot, KEY, body.clone()).await, errcode, "{body}");
    }
    assert!(robot.messages().is_empty());
}

#[tokio::test]
async fn rate_limit_rolls_with_the_clock() {
    let limit = RateLimit {
        messages: 20,
        window: Duration::from_secs(60),
    };
    let robot = FakeWecom::start_with_limit(&[KEY], limit).await.unwrap();
    for _ in 0..20 {
        assert_eq!(post(&robot, KEY, markdown("x")).await, 0);
    }

    assert_eq!(post(&robot, KEY, markdown("x")).await, ERRCODE_RATE_LIMITED);
    robot.advance_clock(Duration::from_secs(59));
    assert_eq!(post(&robot, KEY, markdown("x")).await, ERRCODE_RATE_LIMITED);
    robot.advance_clock(Duration::from_secs(2));
    assert_eq!(post(&robot, KEY, markdown("x")).await, 0);

    assert_eq!(robot.messages().len(), 21);
    let rejections = robot.rejections();
    assert_eq!(rejections.len(), 2);
    assert_eq!(rejections[0].accepted_before, 20);
}
