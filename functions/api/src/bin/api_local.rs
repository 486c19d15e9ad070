//! `api-local`: the same router as the `api` function, served over plain HTTP on 127.0.0.1 for
//! `make demo` and tests. It reads the same environment; `API_PORT` picks the port (0, the
//! default, lets the system choose) and the address is printed as `listening on http://…`.

use backup_bridge::config::{ApiConfig, process_env};
use backup_bridge::lambda::aws_sdk_config;
use backup_bridge_api::{AppState, router};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();

    let port: u16 = match std::env::var("API_PORT") {
        Ok(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid environment variable API_PORT={text}: expected a port number"))?,
        Err(_) => 0,
    };
    let sdk_config = aws_sdk_config().await;
    let config = ApiConfig::load(&process_env, &sdk_config).await?;
    let state = AppState::new(config, &sdk_config)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(state)).await?;
    Ok(())
}
