//! The local clouds that the API tests share: moto for S3, the fake OSS, the fake Aliyun RDS API
//! with one seeded backup, the scripted Amazon RDS export fake, and the fake Lambda endpoint.
//! The API's environment points at all of them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use backup_bridge::config::{ApiConfig, CredentialsSource};
use backup_bridge_api::{AppState, router};
use testkit::fake_lambda::FakeLambda;
use testkit::fake_oss::{FakeOss, FakeOssConfig};
use testkit::fake_rds::FakeRdsConfig;
use testkit::fake_rds::Fixture;
use testkit::fake_rds_export::FakeRdsExport;
use testkit::fake_wecom::FakeWecom;
use testkit::local_clouds::{
    ExportDemo, LocalClouds, OSS_BUCKET, OSS_DOMAIN, SeededBackup, WECOM_KEY, prepare_export_demo,
};
use testkit::{aws, moto};

/// The function name that the API invokes for a pull, and that the fake Lambda endpoint accepts.
pub const PULL_FUNCTION: &str = "aliyun-backup-pull";

/// Everything one API test runs against.
pub struct ApiClouds {
    pub clouds: LocalClouds,
    pub backup: SeededBackup,
    pub rds: FakeRdsExport,
    pub export: ExportDemo,
    pub lambda: FakeLambda,
    pub env: Vec<(String, String)>,
}

impl ApiClouds {
    /// Starts the clouds. The fake OSS takes the fake RDS API's AccessKey pair, because the API
    /// uses one pair for both, as a deployment does.
    pub async fn start(bucket_prefix: &str) -> anyhow::Result<Self> {
        let keys = FakeRdsConfig::new(Fixture::Inline("{}"));
        let mut oss_config = FakeOssConfig::with_buckets(&[OSS_BUCKET]);
        oss_config.access_key_id = keys.access_key_id.clone();
        oss_config.access_key_secret = keys.access_key_secret.clone();
        oss_config
            .custom_domains
            .push((OSS_DOMAIN.to_string(), OSS_BUCKET.to_string()));
        let clouds = LocalClouds {
            oss: FakeOss::start(oss_config).await?,
            wecom: FakeWecom::start(&[WECOM_KEY]).await?,
            moto_url: moto::endpoint(),
            bucket: aws::unique_bucket(bucket_prefix).await,
        };
        let backup = clouds.seed_aliyun_backup(64 * 1024, 7).await?;
        let rds = FakeRdsExport::start().await?;
        let export = prepare_export_demo(&clouds, &rds).await?;
        let lambda = FakeLambda::start(&[PULL_FUNCTION]).await?;

        let mut env = Vec::new();
        env.extend(clouds.sync_env());
        env.extend(export.start_env.clone());
        env.extend(export.poll_env.clone());
        env.extend(clouds.pull_env(&backup));
        env.push(("PULL_FUNCTION_NAME".into(), PULL_FUNCTION.into()));
        env.push(("AWS_ENDPOINT_URL_LAMBDA".into(), lambda.endpoint()));
        env.push(("API_BUILD".into(), "test-build".into()));
        Ok(Self {
            clouds,
            backup,
            rds,
            export,
            lambda,
            env,
        })
    }

    /// Returns the variable as the API reads it. Later entries of `env` win, as in a shell.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = self.env.iter().cloned().collect();
        move |name| map.get(name).cloned()
    }

    /// Builds the API's state from the environment, with an SDK configuration that has explicit
    /// test credentials, region and endpoint.
    pub fn state(&self) -> anyhow::Result<AppState> {
        let lookup = self.lookup();
        let CredentialsSource::Environment(secrets) = CredentialsSource::from_env(&lookup)? else {
            anyhow::bail!("the test environment must carry the Aliyun keys");
        };
        let config = ApiConfig::from_env(&lookup, secrets)?;
        Ok(AppState::new(
            config,
            &aws::sdk_config(&self.clouds.moto_url),
        )?)
    }

    /// Serves the router on a free port of 127.0.0.1 and returns its base URL.
    pub async fn serve(&self) -> anyhow::Result<String> {
        let app = router(self.state()?);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr: SocketAddr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(format!("http://{addr}"))
    }
}
