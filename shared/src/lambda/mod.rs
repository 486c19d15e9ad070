//! Lambda entry points: each function's handler, between the trigger event and its job, and the
//! start-up that every `main` shares.

pub mod export_alerts;
pub mod export_poll;
pub mod export_start;
pub mod pull;
pub mod sync;

/// Loads the AWS SDK configuration from the Lambda environment (region, credentials, and the
/// `AWS_ENDPOINT_URL*` overrides used against local stand-ins).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Ends an invocation's bookkeeping from one count: the EMF job line for the dashboard, and the
/// run record for the daily summary (which also sends the summary when it is due).
pub(crate) async fn record_run(
    alerts: &crate::config::Alerts,
    function: &str,
    request_id: &str,
    metrics: &crate::metrics::JobMetrics,
    alerts_raised: usize,
    deadline: tokio::time::Instant,
) {
    crate::metrics::publish_job(function, metrics);
    let tally = crate::alert::summary::RunTally {
        function: function.to_string(),
        request_id: request_id.to_string(),
        succeeded: metrics.succeeded,
        failed: metrics.failures,
        bytes: metrics.bytes_copied,
        alerts: alerts_raised as u64,
    };
    alerts.finish_run(tally, deadline).await;
}

/// Sends the invocation's alerts, then records its run from `metrics` as [`record_run`] does.
pub(crate) async fn send_alerts_and_record_run(
    alerts: &crate::config::Alerts,
    batch: crate::alert::AlertBatch,
    function: &str,
    request_id: &str,
    metrics: &crate::metrics::JobMetrics,
    deadline: tokio::time::Instant,
) {
    let alerts_raised = batch.len();
    alerts.dispatch(batch, deadline).await;
    record_run(
        alerts,
        function,
        request_id,
        metrics,
        alerts_raised,
        deadline,
    )
    .await;
}

/// A failure before the runtime loop starts, such as a missing setting. When `main` returns an
/// error, the process prints its `Debug` form. Here that form is the message itself, which names
/// the setting and what to do, rather than the fields of the error type.
pub struct StartupError(String);

impl std::fmt::Debug for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

/// Logs a start-up failure and returns it as the error that `main` exits with.
pub fn startup_error(error: impl std::fmt::Display) -> StartupError {
    tracing::error!(%error, "the function cannot start");
    StartupError(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_error_debug_is_message() {
        let error = startup_error("OSS_BUCKET is not set: set it to the destination bucket");
        assert_eq!(
            format!("{error:?}"),
            "OSS_BUCKET is not set: set it to the destination bucket"
        );
        assert_eq!(error.to_string(), format!("{error:?}"));
    }
}
