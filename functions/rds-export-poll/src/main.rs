//! `rds-export-poll`: follows the RDS snapshot exports this deployment started, reports failed,
//! canceled and stuck ones, and reconciles completed ones with OSS. The handler and its retry
//! rules live in `backup_bridge::lambda::export_poll`.

use backup_bridge::config::process_env;
use backup_bridge::lambda::{aws_sdk_config, export_poll::ExportPollFunction, startup_error};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let sdk_config = aws_sdk_config().await;
    let function = ExportPollFunction::from_env(&process_env, &sdk_config)
        .await
        .map_err(startup_error)?;

    run(service_fn(|event: LambdaEvent<Value>| {
        function.handle(event)
    }))
    .await
}
