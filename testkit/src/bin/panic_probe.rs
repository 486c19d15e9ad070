//! A Lambda function for the panic test: `{"panic": "<message>"}` makes its handler panic, and
//! any other event returns how many events this process has handled and its process id. It runs
//! the same `lambda_runtime` loop as the real functions, so the test shows what a panic inside
//! their handlers does to the process.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

static HANDLED: AtomicU64 = AtomicU64::new(0);

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let handled = HANDLED.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(message) = event.payload.get("panic").and_then(Value::as_str) {
        panic!("{message}");
    }
    Ok(json!({ "handled": handled, "pid": std::process::id() }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(handle)).await
}
