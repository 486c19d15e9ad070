//! `rds-export-start`: starts an S3 export of the newest valid snapshot of each configured RDS
//! instance and Aurora cluster, or of one named snapshot. The handler and its retry rules live
//! in `backup_bridge::lambda::export_start`.

use backup_bridge::config::process_env;
use backup_bridge::lambda::{aws_sdk_config, export_start::ExportStartFunction, startup_error};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let sdk_config = aws_sdk_config().await;
    let function = ExportStartFunction::from_env(&process_env, &sdk_config)
        .await
        .map_err(startup_error)?;

    run(service_fn(|event: LambdaEvent<Value>| {
        function.handle(event)
    }))
    .await
}
