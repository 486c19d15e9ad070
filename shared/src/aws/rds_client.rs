//! The `aws-sdk-rds` adapter behind [`SnapshotCatalog`] and [`ExportService`].
//!
//! Every request, each page included, is retried here with [`crate::retry`] when
//! [`RdsError::is_retryable`] allows it, so build the SDK client with its own retries disabled
//! (`RetryConfig::disabled()`) or the attempts multiply.

use async_trait::async_trait;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::operation::RequestId;
use chrono::{DateTime, Utc};

use super::rds::{
    ExportFilter, ExportService, ExportStatus, ExportTask, RdsError, RdsErrorKind, Snapshot,
    SnapshotCatalog, SnapshotKind, Source, SourceKind, StartExport,
};
use crate::retry::{RetryPolicy, retry};

/// `MaxRecords` bounds for the Describe actions, as the RDS API reference states them.
const MIN_PAGE_SIZE: i32 = 20;
const MAX_PAGE_SIZE: i32 = 100;

/// Builds an [`ExportTask`] from any SDK shape with the export task accessors
/// (`StartExportTaskOutput` and `types::ExportTask` share them but no trait).
macro_rules! export_task_from {
    ($value:expr, $target:expr, $operation:expr) => {{
        let value = &$value;
        let Some(id) = value.export_task_identifier() else {
            return Err(invalid_reply(
                $operation,
                $target,
                "ExportTaskIdentifier is missing",
            ));
        };
        ExportTask {
            id: id.to_string(),
            source_arn: value.source_arn().unwrap_or_default().to_string(),
            status: ExportStatus::parse(value.status().unwrap_or_default()),
            percent: value.percent_progress(),
            total_extracted_gb: value.total_extracted_data_in_gb(),
            failure_cause: value.failure_cause().map(str::to_string),
            warning: value.warning_message().map(str::to_string),
            started: value.task_start_time().and_then(to_chrono),
            s3_bucket: value.s3_bucket().map(str::to_string),
            s3_prefix: value.s3_prefix().map(str::to_string),
        }
    }};
}

/// RDS over `aws-sdk-rds`.
#[derive(Debug, Clone)]
pub struct RdsClient {
    client: aws_sdk_rds::Client,
    page_size: i32,
    retry: RetryPolicy,
}

impl RdsClient {
    /// Wraps a client; pages hold 100 records and retries follow [`RetryPolicy::default`].
    pub fn new(client: aws_sdk_rds::Client) -> Self {
        Self {
            client,
            page_size: MAX_PAGE_SIZE,
            retry: RetryPolicy::default(),
        }
    }

    /// Sets `MaxRecords` for every Describe call, clamped to the 20..=100 that RDS accepts.
    pub fn with_page_size(mut self, page_size: i32) -> Self {
        self.page_size = page_size.clamp(MIN_PAGE_SIZE, MAX_PAGE_SIZE);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    async fn list_instance_snapshots(
        &self,
        instance: Option<&str>,
        snapshot_id: Option<&str>,
    ) -> Result<Vec<Snapshot>, RdsError> {
        let target = snapshot_id.or(instance).unwrap_or("all instances");
        let mut snapshots = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = retry(&self.retry, RdsError::is_retryable, |_| {
                let request = self
                    .client
                    .describe_db_snapshots()
                    .set_db_instance_identifier(instance.map(str::to_string))
                    .set_db_snapshot_identifier(snapshot_id.map(str::to_string))
                    .max_records(self.page_size)
                    .set_marker(marker.clone())
                    .send();
                async move {
                    request
                        .await
                        .map_err(|e| map_sdk_error("DescribeDBSnapshots", target, e))
                }
            })
            .await?;
            for item in page.db_snapshots() {
                snapshots.push(instance_snapshot(item, target)?);
            }
            marker = page.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                return Ok(snapshots);
            }
        }
    }

    async fn list_cluster_snapshots(
        &self,
        cluster: Option<&str>,
        snapshot_id: Option<&str>,
    ) -> Result<Vec<Snapshot>, RdsError> {
        let target = snapshot_id.or(cluster).unwrap_or("all clusters");
        let mut snapshots = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = retry(&self.retry, RdsError::is_retryable, |_| {
                let request = self
                    .client
                    .describe_db_cluster_snapshots()
                    .set_db_cluster_identifier(cluster.map(str::to_string))
                    .set_db_cluster_snapshot_identifier(snapshot_id.map(str::to_string))
                    .max_records(self.page_size)
                    .set_marker(marker.clone())
                    .send();
                async move {
                    request
                        .await
                        .map_err(|e| map_sdk_error("DescribeDBClusterSnapshots", target, e))
                }
            })
            .await?;
            for item in page.db_cluster_snapshots() {
                snapshots.push(cluster_snapshot(item, target)?);
            }
            marker = page.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                return Ok(snapshots);
            }
        }
    }
}

#[async_trait]
impl SnapshotCatalog for RdsClient {
    async fn list_snapshots(&self, source: &Source) -> Result<Vec<Snapshot>, RdsError> {
        match source {
            Source::Instance(id) => self.list_instance_snapshots(Some(id), None).await,
            Source::Cluster(id) => self.list_cluster_snapshots(Some(id), None).await,
        }
    }

    async fn find_snapshot(
        &self,
        kind: SourceKind,
        snapshot_id: &str,
    ) -> Result<Option<Snapshot>, RdsError> {
        let found = match kind {
            SourceKind::Instance => self.list_instance_snapshots(None, Some(snapshot_id)).await,
            SourceKind::Cluster => self.list_cluster_snapshots(None, Some(snapshot_id)).await,
        };
        match found {
            Ok(snapshots) => Ok(snapshots.into_iter().next()),
            Err(error) if error.kind() == RdsErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[async_trait]
impl ExportService for RdsClient {
    async fn start_export(&self, request: &StartExport) -> Result<ExportTask, RdsError> {
        let output = retry(&self.retry, RdsError::is_retryable, |_| {
            let sent = self
                .client
                .start_export_task()
                .export_task_identifier(&request.task_id)
                .source_arn(&request.source_arn)
                .s3_bucket_name(&request.s3_bucket)
                .s3_prefix(&request.s3_prefix)
                .iam_role_arn(&request.iam_role_arn)
                .kms_key_id(&request.kms_key_id)
                .set_export_only(
                    (!request.export_only.is_empty()).then(|| request.export_only.clone()),
                )
                .send();
            async move {
                sent.await
                    .map_err(|e| map_sdk_error("StartExportTask", &request.task_id, e))
            }
        })
        .await?;
        Ok(export_task_from!(
            output,
            &request.task_id,
            "StartExportTask"
        ))
    }

    async fn describe_exports(&self, filter: &ExportFilter) -> Result<Vec<ExportTask>, RdsError> {
        let target = filter
            .task_id
            .as_deref()
            .or(filter.source_arn.as_deref())
            .unwrap_or("all");
        let mut tasks = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = retry(&self.retry, RdsError::is_retryable, |_| {
                let request = self
                    .client
                    .describe_export_tasks()
                    .set_export_task_identifier(filter.task_id.clone())
                    .set_source_arn(filter.source_arn.clone())
                    .max_records(self.page_size)
                    .set_marker(marker.clone())
                    .send();
                async move {
                    request
                        .await
                        .map_err(|e| map_sdk_error("DescribeExportTasks", target, e))
                }
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    // A filter naming a task that does not exist yields `ExportTaskNotFound`,
                    // which means "no tasks" to every caller here.
                    if error.kind() == RdsErrorKind::NotFound {
                        return Ok(tasks);
                    }
                    return Err(error);
                }
            };
            for item in page.export_tasks() {
                tasks.push(export_task_from!(item, target, "DescribeExportTasks"));
            }
            marker = page.marker().filter(|m| !m.is_empty()).map(str::to_string);
            if marker.is_none() {
                return Ok(tasks);
            }
        }
    }
}

fn instance_snapshot(
    item: &aws_sdk_rds::types::DbSnapshot,
    target: &str,
) -> Result<Snapshot, RdsError> {
    let operation = "DescribeDBSnapshots";
    let (Some(arn), Some(id), Some(instance)) = (
        item.db_snapshot_arn(),
        item.db_snapshot_identifier(),
        item.db_instance_identifier(),
    ) else {
        return Err(invalid_reply(
            operation,
            target,
            "a snapshot lacks its ARN or identifiers",
        ));
    };
    Ok(Snapshot {
        arn: arn.to_string(),
        id: id.to_string(),
        source: Source::Instance(instance.to_string()),
        created: item.snapshot_create_time().and_then(to_chrono),
        status: item.status().unwrap_or_default().to_string(),
        encrypted: item.encrypted().unwrap_or(false),
        kind: SnapshotKind::parse(item.snapshot_type().unwrap_or_default()),
    })
}

fn cluster_snapshot(
    item: &aws_sdk_rds::types::DbClusterSnapshot,
    target: &str,
) -> Result<Snapshot, RdsError> {
    let operation = "DescribeDBClusterSnapshots";
    let (Some(arn), Some(id), Some(cluster)) = (
        item.db_cluster_snapshot_arn(),
        item.db_cluster_snapshot_identifier(),
        item.db_cluster_identifier(),
    ) else {
        return Err(invalid_reply(
            operation,
            target,
            "a snapshot lacks its ARN or identifiers",
        ));
    };
    Ok(Snapshot {
        arn: arn.to_string(),
        id: id.to_string(),
        source: Source::Cluster(cluster.to_string()),
        created: item.snapshot_create_time().and_then(to_chrono),
        status: item.status().unwrap_or_default().to_string(),
        encrypted: item.storage_encrypted().unwrap_or(false),
        kind: SnapshotKind::parse(item.snapshot_type().unwrap_or_default()),
    })
}

fn to_chrono(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn invalid_reply(operation: &'static str, target: &str, message: &str) -> RdsError {
    RdsError::InvalidReply {
        operation,
        target: target.to_string(),
        message: message.to_string(),
    }
}

/// Turns an SDK failure into [`RdsError`], keeping the AWS error code, HTTP status and request id.
fn map_sdk_error<E>(operation: &'static str, target: &str, error: SdkError<E>) -> RdsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let target = target.to_string();
    match error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let request_id = context.err().meta().request_id().map(str::to_string);
            let err = context.err();
            RdsError::Service {
                operation,
                target,
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err.message().unwrap_or("no message").to_string(),
                status,
                request_id,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => RdsError::Transport {
            operation,
            target,
            message: aws_sdk_rds::error::DisplayErrorContext(&error).to_string(),
        },
        SdkError::ResponseError(_) => RdsError::InvalidReply {
            operation,
            target,
            message: aws_sdk_rds::error::DisplayErrorContext(&error).to_string(),
        },
        other => RdsError::InvalidRequest {
            operation,
            target,
            message: aws_sdk_rds::error::DisplayErrorContext(&other).to_string(),
        },
    }
}
