//! `api`: the HTTP API behind an API Gateway HTTP API (payload format 2.0). The routes and their
//! rules live in the library; this binary loads the configuration once and runs the router.

use backup_bridge::config::{ApiConfig, process_env};
use backup_bridge::lambda::{aws_sdk_config, startup_error};
use backup_bridge_api::{AppState, router};
use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();

    let sdk_config = aws_sdk_config().await;
    let config = ApiConfig::load(&process_env, &sdk_config)
        .await
        .map_err(startup_error)?;
    let state = AppState::new(config, &sdk_config).map_err(startup_error)?;
    run(router(state)).await
}
