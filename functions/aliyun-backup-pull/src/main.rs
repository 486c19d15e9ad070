//! `aliyun-backup-pull`: validates the Aliyun RDS backups of the configured instances and pulls
//! new ones into S3, verified with CRC-64, continuing long copies in fresh invocations. The
//! handler and its retry rules live in `backup_bridge::lambda::pull`.

use backup_bridge::config::process_env;
use backup_bridge::lambda::{aws_sdk_config, pull::PullFunction, startup_error};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let sdk_config = aws_sdk_config().await;
    let function = PullFunction::from_env(&process_env, &sdk_config, None)
        .await
        .map_err(startup_error)?;

    run(service_fn(|event: LambdaEvent<Value>| {
        function.handle(event)
    }))
    .await
}
