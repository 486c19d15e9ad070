//! The [`Continuation`] adapter over Lambda `Invoke`: the function queues its own next run with
//! `InvocationType::Event`, so the call returns once Lambda accepted the event.

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::jobs::pull::{Continuation, ContinuationError, ContinuationPayload};

/// Error codes of `Invoke` after which the same request may succeed.
const RETRYABLE_CODES: &[&str] = &[
    "TooManyRequestsException",
    "ServiceException",
    "EC2ThrottledException",
    "ResourceNotReadyException",
    "ResourceConflictException",
];

/// Invokes one function asynchronously with the continuation event.
#[derive(Debug, Clone)]
pub struct LambdaSelfInvoke {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaSelfInvoke {
    pub fn new(client: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            client,
            function_name: function_name.into(),
        }
    }
}

#[async_trait]
impl Continuation for LambdaSelfInvoke {
    async fn hand_over(&self, payload: &ContinuationPayload) -> Result<(), ContinuationError> {
        let body = serde_json::to_vec(&payload.to_event()).map_err(|error| ContinuationError {
            message: format!("failed to serialise the continuation payload: {error}"),
            retryable: false,
        })?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|error| {
                let code = error.code().map(str::to_string);
                let retryable = match &code {
                    Some(code) => RETRYABLE_CODES.contains(&code.as_str()),
                    // No service error: the request failed on the way (timeout, connection).
                    None => true,
                };
                ContinuationError {
                    message: format!(
                        "Invoke of {} failed: {}: {}",
                        self.function_name,
                        code.as_deref().unwrap_or("no error code"),
                        error.message().map(str::to_string).unwrap_or_else(|| {
                            aws_sdk_lambda::error::DisplayErrorContext(&error).to_string()
                        })
                    ),
                    retryable,
                }
            })?;
        // An accepted asynchronous invocation returns 202.
        if output.status_code() != 202 {
            return Err(ContinuationError {
                message: format!(
                    "Invoke of {} returned status {} instead of 202",
                    self.function_name,
                    output.status_code()
                ),
                retryable: true,
            });
        }
        Ok(())
    }
}

/// A [`Continuation`] for a process that is not a Lambda function, where no name to invoke
/// exists: every hand-over fails, so a long pull is reported instead of lost.
#[derive(Debug, Clone, Default)]
pub struct NoSelfInvoke;

#[async_trait]
impl Continuation for NoSelfInvoke {
    async fn hand_over(&self, _payload: &ContinuationPayload) -> Result<(), ContinuationError> {
        Err(ContinuationError {
            message: "AWS_LAMBDA_FUNCTION_NAME is not set, so the pull cannot invoke itself".into(),
            retryable: false,
        })
    }
}
