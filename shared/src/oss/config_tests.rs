use std::collections::HashMap;

use super::*;
use crate::oss::endpoint::EndpointKind;

fn environment(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn valid_environment() -> HashMap<String, String> {
    environment(&[
        (vars::ENDPOINT, "oss-cn-hangzhou.aliyuncs.com"),
        (vars::REGION, "cn-hangzhou"),
        (vars::BUCKET, "backup-bucket"),
        (vars::ACCESS_KEY_ID, "LTAI-test-id"),
        (vars::ACCESS_KEY_SECRET, "test-secret-value"),
        (vars::SECURITY_TOKEN, "test-token-value"),
    ])
}

fn load(env: &HashMap<String, String>) -> Result<OssConfig, OssConfigError> {
    OssConfig::from_env(|name| env.get(name).cloned())
}

#[test]
fn reads_every_variable() {
    let config = load(&valid_environment()).unwrap();
    assert_eq!(
        config.endpoint.kind(),
        &EndpointKind::Standard {
            region: "cn-hangzhou".into()
        }
    );
    assert_eq!(config.region, "cn-hangzhou");
    assert_eq!(config.bucket, "backup-bucket");
    assert_eq!(config.credentials.access_key_id, "LTAI-test-id");
    assert_eq!(
        config.credentials.access_key_secret.expose(),
        "test-secret-value"
    );
    assert_eq!(
        config
            .credentials
            .security_token
            .as_ref()
            .map(Secret::expose),
        Some("test-token-value")
    );
    assert!(config.resolve.is_empty());
}

#[test]
fn debug_output_hides_secret_and_token() {
    let printed = format!("{:?}", load(&valid_environment()).unwrap());
    assert!(printed.contains("LTAI-test-id"));
    assert!(!printed.contains("test-secret-value"));
    assert!(!printed.contains("test-token-value"));
}

#[test]
fn missing_variables_are_named() {
    for name in [
        vars::ENDPOINT,
        vars::REGION,
        vars::BUCKET,
        vars::ACCESS_KEY_ID,
        vars::ACCESS_KEY_SECRET,
    ] {
        let mut env = valid_environment();
        env.remove(name);
        let error = load(&env).unwrap_err();
        assert!(
            matches!(error, OssConfigError::Missing { name: missing, .. } if missing == name),
            "{name}"
        );
        assert!(error.to_string().contains(name), "{error}");

        env.insert(name.to_string(), "  ".to_string());
        let error = load(&env).unwrap_err();
        assert!(
            matches!(error, OssConfigError::Missing { .. }),
            "{name} set to blanks"
        );
    }
}

#[test]
fn security_token_is_optional() {
    let mut env = valid_environment();
    env.remove(vars::SECURITY_TOKEN);
    assert_eq!(load(&env).unwrap().credentials.security_token, None);
}

#[test]
fn malformed_variables_are_named() {
    let cases = [
        (vars::REGION, "CN Hangzhou"),
        (vars::BUCKET, "Backup_Bucket"),
        (vars::BUCKET, "ab"),
        (vars::BUCKET, "-bucket"),
        (vars::CUSTOM_DOMAIN, "maybe"),
        (vars::ALLOW_HTTP, "sometimes"),
        (vars::ENDPOINT, "backup-bucket.oss-cn-hangzhou.aliyuncs.com"),
        (vars::ENDPOINT, "https://oss-cn-hangzhou.aliyuncs.com/path"),
    ];
    for (name, value) in cases {
        let mut env = valid_environment();
        env.insert(name.to_string(), value.to_string());
        let error = load(&env).unwrap_err();
        assert!(error.to_string().contains(name), "{name}={value}: {error}");
    }
}

#[test]
fn rejects_region_that_differs_from_endpoint() {
    let mut env = valid_environment();
    env.insert(vars::REGION.into(), "cn-shanghai".into());
    let error = load(&env).unwrap_err();
    assert!(matches!(
        error,
        OssConfigError::Endpoint {
            source: EndpointError::RegionMismatch { .. },
            ..
        }
    ));
}

#[test]
fn custom_domain_flag_selects_custom_domain_mode() {
    let mut env = valid_environment();
    env.insert(vars::ENDPOINT.into(), "backups.example.com".into());
    assert!(matches!(
        load(&env).unwrap_err(),
        OssConfigError::Endpoint {
            source: EndpointError::NotOssEndpoint { .. },
            ..
        }
    ));

    env.insert(vars::CUSTOM_DOMAIN.into(), "true".into());
    assert_eq!(
        load(&env).unwrap().endpoint.kind(),
        &EndpointKind::CustomDomain
    );
}

#[test]
fn http_endpoint_needs_allow_http() {
    let mut env = valid_environment();
    env.insert(
        vars::ENDPOINT.into(),
        "http://oss-cn-hangzhou.aliyuncs.com:9000".into(),
    );
    assert!(load(&env).is_err());

    env.insert(vars::ALLOW_HTTP.into(), "true".into());
    assert_eq!(
        load(&env).unwrap().endpoint.to_string(),
        "http://oss-cn-hangzhou.aliyuncs.com:9000"
    );
}

#[test]
fn credentials_can_be_given_as_a_value() {
    let mut env = valid_environment();
    env.remove(vars::ACCESS_KEY_ID);
    env.remove(vars::ACCESS_KEY_SECRET);
    let credentials = AliyunCredentials {
        access_key_id: "from-secrets-manager".into(),
        access_key_secret: Secret::new("s"),
        security_token: None,
    };
    let config =
        OssConfig::from_env_with_credentials(|name| env.get(name).cloned(), credentials).unwrap();
    assert_eq!(config.credentials.access_key_id, "from-secrets-manager");
}
