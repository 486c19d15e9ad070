//! Asynchronous Lambda invocation (`InvocationType=Event`): the call returns once Lambda queued
//! the event, so a request can start a pull that runs for many minutes.

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

/// A rejected or failed asynchronous invocation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("asynchronous invoke of {function_name} failed: {code}: {message}")]
pub struct InvokeError {
    pub function_name: String,
    /// The Lambda error code, such as `ResourceNotFoundException`, or `NoResponse` when the
    /// request got no reply.
    pub code: String,
    pub message: String,
}

/// Queues one event for a function without waiting for its result.
#[async_trait]
pub trait AsyncInvoker: Send + Sync {
    /// The function that receives the events.
    fn function_name(&self) -> &str;

    /// Queues `payload`; returns once the event is accepted.
    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError>;
}

/// [`AsyncInvoker`] over Lambda `Invoke`.
#[derive(Debug, Clone)]
pub struct LambdaEventInvoker {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaEventInvoker {
    pub fn new(client: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            client,
            function_name: function_name.into(),
        }
    }

    fn error(&self, code: &str, message: String) -> InvokeError {
        InvokeError {
            function_name: self.function_name.clone(),
            code: code.to_string(),
            message,
        }
    }
}

#[async_trait]
impl AsyncInvoker for LambdaEventInvoker {
    fn function_name(&self) -> &str {
        &self.function_name
    }

    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError> {
        let body = serde_json::to_vec(payload)
            .map_err(|error| self.error("InvalidPayload", error.to_string()))?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|error| {
                let code = error.code().unwrap_or("NoResponse").to_string();
                let message = error.message().map(str::to_string).unwrap_or_else(|| {
                    aws_sdk_lambda::error::DisplayErrorContext(&error).to_string()
                });
                self.error(&code, message)
            })?;
        // Lambda accepts an asynchronous invocation with 202.
        if output.status_code() != 202 {
            return Err(self.error(
                "UnexpectedStatus",
                format!("expected status 202, got {}", output.status_code()),
            ));
        }
        Ok(())
    }
}
