//! Loading the Aliyun credentials from moto's Secrets Manager over real HTTP.

use backup_bridge::secrets::{SecretsError, load_aliyun_credentials};

/// Creates a secret with a unique name and returns its ARN.
async fn create_secret(name: &str, value: &str) -> String {
    let client = testkit::aws::secrets_client();
    let unique_name = format!("{name}-{}-{}", std::process::id(), rand_suffix());
    let output = client
        .create_secret()
        .name(unique_name)
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret");
    output
        .arn()
        .expect("moto returns the secret ARN")
        .to_owned()
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn loads_credentials_and_webhook_key() {
    let arn = create_secret(
        "bridge-full",
        r#"{"access_key_id":"LTAI5tExample","access_key_secret":"secret-value-1","security_token":"sts-token-1","wecom_webhook_key":"webhook-key-1"}"#,
    )
    .await;
    let client = testkit::aws::secrets_client();

    let secrets = load_aliyun_credentials(&client, &arn).await.unwrap();
    assert_eq!(secrets.aliyun.access_key_id, "LTAI5tExample");
    assert_eq!(secrets.aliyun.access_key_secret.expose(), "secret-value-1");
    assert_eq!(
        secrets
            .aliyun
            .security_token
            .as_ref()
            .map(|token| token.expose()),
        Some("sts-token-1")
    );
    assert_eq!(
        secrets.wecom_webhook_key.as_ref().map(|key| key.expose()),
        Some("webhook-key-1")
    );

    let printed = format!("{secrets:?}");
    assert!(printed.contains("LTAI5tExample"));
    assert!(!printed.contains("secret-value-1"));
    assert!(!printed.contains("sts-token-1"));
    assert!(!printed.contains("webhook-key-1"));
}

#[tokio::test]
async fn loads_credentials_without_optional_fields() {
    let arn = create_secret(
        "bridge-minimal",
        r#"{"access_key_id":"LTAI5tMinimal","access_key_secret":"secret-value-2"}"#,
    )
    .await;
    let secrets = load_aliyun_credentials(&testkit::aws::secrets_client(), &arn)
        .await
        .unwrap();
    assert_eq!(secrets.aliyun.access_key_id, "LTAI5tMinimal");
    assert_eq!(secrets.aliyun.security_token, None);
    assert_eq!(secrets.wecom_webhook_key, None);
}

#[tokio::test]
async fn missing_field_is_named_without_values() {
    let arn = create_secret(
        "bridge-no-secret",
        r#"{"access_key_id":"LTAI5tVisible","security_token":"sts-token-3"}"#,
    )
    .await;
    let error = load_aliyun_credentials(&testkit::aws::secrets_client(), &arn)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            SecretsError::MissingField {
                field: "access_key_secret",
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains(&arn), "{message}");
    assert!(message.contains("access_key_secret"), "{message}");
    assert!(!message.contains("sts-token-3"), "{message}");
    assert!(!format!("{error:?}").contains("sts-token-3"));
}

#[tokio::test]
async fn malformed_json_is_reported_without_values() {
    let arn = create_secret(
        "bridge-bad-json",
        r#"{"access_key_id":"LTAI5tBroken","access_key_secret":"secret-value-4""#,
    )
    .await;
    let error = load_aliyun_credentials(&testkit::aws::secrets_client(), &arn)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, SecretsError::NotJson { .. }), "{message}");
    assert!(message.contains(&arn), "{message}");
    assert!(!message.contains("secret-value-4"), "{message}");
    assert!(!format!("{error:?}").contains("secret-value-4"));
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn missing_secret_is_reported_with_its_arn() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:backup-bridge-absent-AbCdEf";
    let error = load_aliyun_credentials(&testkit::aws::secrets_client(), arn)
        .await
        .unwrap_err();
    let message = error.to_string();
    let SecretsError::Fetch {
        code, retryable, ..
    } = &error
    else {
        panic!("expected a fetch error, got {message}");
    };
    assert_eq!(code.as_deref(), Some("ResourceNotFoundException"));
    assert!(!retryable);
    assert!(message.contains(arn), "{message}");
}
