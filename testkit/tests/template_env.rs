//! Each function in `template.yaml` sets exactly the environment variables that its configuration
//! reads. The test runs the real configuration readers with a lookup that returns the template's
//! values and records every name it is asked for, then compares the two lists.

mod template_support;

use std::cell::RefCell;
use std::collections::BTreeSet;

use backup_bridge::config::{
    AlertingConfig, ApiConfig, ConfigError, CredentialsSource, ExportPollFunctionConfig,
    ExportStartFunctionConfig, Lookup, PullConfig, SyncConfig,
};
use backup_bridge::secret::{AliyunCredentials, Secret};
use backup_bridge::secrets::BridgeSecrets;
use backup_bridge::storage::memory::MemoryStore;
use template_support::Template;

/// Variables that the readers ask for but that the template leaves unset on purpose.
const UNSET_ON_PURPOSE: &[(&str, &str)] = &[
    // Endpoints and switches for the local clouds on 127.0.0.1: tests and `make demo` only.
    ("AWS_ENDPOINT_URL_S3", "local clouds: moto instead of S3"),
    ("AWS_ENDPOINT_URL_RDS", "local clouds: the RDS export fake"),
    (
        "AWS_ENDPOINT_URL_LAMBDA",
        "local clouds: the fake Invoke endpoint",
    ),
    (
        "S3_FORCE_PATH_STYLE",
        "local clouds: moto needs path-style URLs",
    ),
    (
        "OSS_ALLOW_HTTP",
        "local clouds: the fake OSS speaks plain HTTP",
    ),
    (
        "ALIYUN_RDS_ENDPOINT",
        "local clouds: the fake RDS API; ALIYUN_REGION picks the real one",
    ),
    (
        "ALIYUN_RDS_ALLOW_HTTP",
        "local clouds: the fake RDS API speaks plain HTTP",
    ),
    (
        "DOWNLOAD_ALLOW_HTTP",
        "local clouds: backup links on 127.0.0.1",
    ),
    (
        "DOWNLOAD_ALLOWED_HOSTS",
        "local clouds: the default aliyuncs.com is right on AWS",
    ),
    ("WECOM_BASE_URL", "local clouds: the fake WeCom robot"),
    (
        "WECOM_ALLOWED_HOSTS",
        "local clouds: the default allows only the WeCom host",
    ),
    // Secrets come from the Secrets Manager secret, never from the template.
    (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "secret: read from the secret instead",
    ),
    (
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "secret: read from the secret instead",
    ),
    (
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "secret: read from the secret instead",
    ),
    ("WECOM_WEBHOOK_KEY", "secret: read from the secret instead"),
    // Set by Lambda itself.
    ("AWS_LAMBDA_FUNCTION_NAME", "set by Lambda"),
];

/// A lookup over the template's values that records every variable name it is asked for.
struct RecordingEnv {
    values: std::collections::BTreeMap<String, String>,
    asked: RefCell<BTreeSet<String>>,
}

impl RecordingEnv {
    fn new(values: std::collections::BTreeMap<String, String>) -> Self {
        Self {
            values,
            asked: RefCell::new(BTreeSet::new()),
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_string());
        self.values.get(name).cloned()
    }

    fn asked(&self) -> BTreeSet<String> {
        self.asked.borrow().clone()
    }
}

fn credentials() -> AliyunCredentials {
    AliyunCredentials {
        access_key_id: "LTAI-template-test".into(),
        access_key_secret: Secret::new("template-test-secret"),
        security_token: None,
    }
}

/// Runs the configuration readers of `binary` as its `from_env` runs them at cold start, except
/// for reading the secret itself, which needs Secrets Manager.
async fn read_configuration(binary: &str, lookup: Lookup<'_>) -> Result<(), ConfigError> {
    CredentialsSource::from_env(lookup)?;
    match binary {
        "s3-oss-sync" => {
            SyncConfig::from_env(lookup, credentials())?;
        }
        "aliyun-backup-pull" => {
            PullConfig::from_env(lookup)?;
        }
        "rds-export-start" => {
            ExportStartFunctionConfig::from_env(lookup)?;
        }
        "rds-export-poll" => {
            ExportPollFunctionConfig::from_env(lookup, credentials())?;
        }
        "api" => {
            let secrets = BridgeSecrets {
                aliyun: credentials(),
                wecom_webhook_key: Some(Secret::new("template-test-key")),
            };
            ApiConfig::from_env(lookup, secrets)?;
            // The API builds no alerter, so it reads no alerting variables beyond its own.
            return Ok(());
        }
        other => panic!("no configuration reader is known for {other}"),
    }
    // With a webhook key every alerting variable is read, including the robot's.
    let rules_source = MemoryStore::new("template-test");
    AlertingConfig::from_env(
        lookup,
        Some(Secret::new("template-test-key")),
        &rules_source,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn every_function_sets_exactly_the_variables_it_reads() {
    let template = Template::load();
    let unset: BTreeSet<&str> = UNSET_ON_PURPOSE.iter().map(|(name, _)| *name).collect();
    let functions = template.functions();
    assert_eq!(
        functions.len(),
        5,
        "expected five functions in template.yaml"
    );

    for function in functions {
        let values = template.environment(&function);
        let env = RecordingEnv::new(values.clone());
        let lookup = |name: &str| env.lookup(name);
        if let Err(error) = read_configuration(&function.binary, &lookup).await {
            panic!(
                "{} rejects the template's sample values: {error}",
                function.binary
            );
        }
        let asked = env.asked();
        let set: BTreeSet<String> = values.keys().cloned().collect();

        let missing: Vec<&String> = asked
            .iter()
            .filter(|name| !set.contains(*name) && !unset.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} reads {missing:?}, which template.yaml does not set; set them or add them to \
             UNSET_ON_PURPOSE with the reason",
            function.binary
        );

        let unread: Vec<&String> = set.iter().filter(|name| !asked.contains(*name)).collect();
        assert!(
            unread.is_empty(),
            "template.yaml sets {unread:?} for {}, which never reads them",
            function.binary
        );

        let local: Vec<&String> = set
            .iter()
            .filter(|name| unset.contains(name.as_str()))
            .collect();
        assert!(
            local.is_empty(),
            "template.yaml sets {local:?} for {}, which must stay unset on AWS",
            function.binary
        );
    }
}

#[test]
fn every_workspace_function_has_a_template_function() {
    let template = Template::load();
    let built: BTreeSet<String> = template
        .functions()
        .into_iter()
        .map(|function| function.binary)
        .collect();
    let root = testkit::paths::workspace_root().unwrap();
    let crates: BTreeSet<String> = std::fs::read_dir(root.join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(built, crates);
}

#[test]
fn every_function_runs_bootstrap_from_its_crate() {
    let template = Template::load();
    let root = testkit::paths::workspace_root().unwrap();
    for function in template.functions() {
        let manifest = root
            .join("functions")
            .join(&function.binary)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|error| panic!("{}: {error}", manifest.display()));
        assert!(
            text.contains(&format!("name = \"{}\"", function.binary)),
            "{} builds no binary named {}",
            manifest.display(),
            function.binary
        );
    }
}
