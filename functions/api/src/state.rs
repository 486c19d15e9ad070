//! The clients that every request shares, built once per cold start.

use std::sync::Arc;

use backup_bridge::aliyun::{RdsClient as AliyunRdsClient, RpcClient};
use backup_bridge::api::{AsyncInvoker, LambdaEventInvoker};
use backup_bridge::aws::rds::{ExportService, SnapshotCatalog};
use backup_bridge::config::{ApiConfig, ConfigError};
use backup_bridge::jobs::pull::BackupCatalog;
use backup_bridge::lambda::export_start::build_rds_client;
use backup_bridge::oss::OssStore;
use backup_bridge::storage::s3::{S3Store, build_client};

/// The configuration and the clients of the clouds the API reads and acts on.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ApiConfig>,
    /// The Aliyun RDS API.
    pub aliyun: Arc<dyn BackupCatalog>,
    pub snapshots: Arc<dyn SnapshotCatalog>,
    pub exports: Arc<dyn ExportService>,
    /// The bucket that receives the pulled Aliyun backups.
    pub pull_store: Arc<S3Store>,
    /// The bucket that receives the RDS exports and contains the export markers.
    pub export_store: Arc<S3Store>,
    pub oss: Arc<OssStore>,
    /// Starts `aliyun-backup-pull` without waiting for it.
    pub pull_invoker: Arc<dyn AsyncInvoker>,
}

impl AppState {
    /// Builds the clients from `config`; `sdk_config` supplies the AWS region and credentials.
    ///
    /// # Errors
    /// A [`ConfigError`] when an HTTP client cannot be built from the configured endpoint.
    pub fn new(config: ApiConfig, sdk_config: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let rds_endpoint = config.pull.rds.endpoint.authority();
        let rpc = RpcClient::new(config.aliyun.clone(), config.pull.rds.clone()).map_err(
            |error| ConfigError::Invalid {
                name: "ALIYUN_RDS_ENDPOINT",
                value: rds_endpoint,
                reason: error.to_string(),
            },
        )?;
        let oss = OssStore::new(config.sync.oss.clone()).map_err(|error| ConfigError::Invalid {
            name: "OSS_ENDPOINT",
            value: config.sync.oss.endpoint.host().to_string(),
            reason: error.to_string(),
        })?;
        let rds = Arc::new(build_rds_client(sdk_config, &config.export_start.rds));
        let pull_store = S3Store::new(build_client(sdk_config, &config.pull.s3), &config.pull.bucket);
        let export_store = S3Store::new(
            build_client(sdk_config, &config.export_poll.s3),
            &config.export_poll.bucket,
        );
        let mut lambda = aws_sdk_lambda::config::Builder::from(sdk_config);
        if let Some(endpoint) = &config.lambda_endpoint_url {
            lambda = lambda.endpoint_url(endpoint);
        }
        let pull_invoker = LambdaEventInvoker::new(
            aws_sdk_lambda::Client::from_conf(lambda.build()),
            config.pull_function_name.clone(),
        );
        Ok(Self {
            aliyun: Arc::new(AliyunRdsClient::new(rpc)),
            snapshots: rds.clone(),
            exports: rds,
            pull_store: Arc::new(pull_store),
            export_store: Arc::new(export_store),
            oss: Arc::new(oss),
            pull_invoker: Arc::new(pull_invoker),
            config: Arc::new(config),
        })
    }
}
