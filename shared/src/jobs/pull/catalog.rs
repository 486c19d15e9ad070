//! The port through which the pull reads the RDS backup list, and its adapter over
//! [`RdsClient`].

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::aliyun::{AliyunError, Backup, BackupFilters, BackupWindow, RdsClient};

/// Lists and looks up the backups of RDS instances.
#[async_trait]
pub trait BackupCatalog: Send + Sync {
    /// Lists every backup of `instance_id` in `window`, of any status.
    async fn list_backups(
        &self,
        instance_id: &str,
        window: &BackupWindow,
    ) -> Result<Vec<Backup>, AliyunError>;

    /// Looks up one backup in `window`; returns `None` when no backup has this id there.
    /// Every call returns fresh download URLs.
    async fn find_backup(
        &self,
        instance_id: &str,
        backup_id: &str,
        window: &BackupWindow,
    ) -> Result<Option<Backup>, AliyunError>;
}

#[async_trait]
impl BackupCatalog for RdsClient {
    async fn list_backups(
        &self,
        instance_id: &str,
        window: &BackupWindow,
    ) -> Result<Vec<Backup>, AliyunError> {
        self.describe_backups(instance_id, window, &BackupFilters::default())
            .await
    }

    async fn find_backup(
        &self,
        instance_id: &str,
        backup_id: &str,
        window: &BackupWindow,
    ) -> Result<Option<Backup>, AliyunError> {
        let filters = BackupFilters {
            backup_id: Some(backup_id.to_string()),
            ..BackupFilters::default()
        };
        let backups = self.describe_backups(instance_id, window, &filters).await?;
        Ok(backups
            .into_iter()
            .find(|backup| backup.backup_id == backup_id))
    }
}

/// Returns the window used to look a known backup up again: one hour either side of its start,
/// because `DescribeBackups` needs a time range even when it filters by id.
pub fn window_around(start: DateTime<Utc>) -> Result<BackupWindow, AliyunError> {
    BackupWindow::new(start - TimeDelta::hours(1), start + TimeDelta::hours(1))
}
