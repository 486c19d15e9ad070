//! Validation of Aliyun RDS backups (ValidateBackup): pure functions from the backups listed in a
//! window to structured verdicts that the alerting code turns into messages.

use chrono::{DateTime, TimeDelta, Utc};

use crate::aliyun::{Backup, BackupMethod, BackupStatus, BackupType};

/// Limits that a healthy instance meets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationSettings {
    /// Maximum age of the newest successful full backup, measured from its end.
    pub max_age: TimeDelta,
    /// The newest full backup must be at least this fraction of the size of the previous full
    /// backup of the same method, between 0 and 1.
    pub min_size_fraction: f64,
    /// The network of the download URL that the pull uses, so a backup without that URL is reported.
    pub network: DownloadNetwork,
}

impl Default for ValidationSettings {
    /// Returns a maximum age of 26 hours (a daily backup plus two hours of slack) and a minimum
    /// size of 50 % of the previous full backup, over the public network.
    fn default() -> Self {
        Self {
            max_age: TimeDelta::hours(26),
            min_size_fraction: 0.5,
            network: DownloadNetwork::Public,
        }
    }
}

/// The network a backup is downloaded over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadNetwork {
    #[default]
    Public,
    /// The internal network of the instance's region, for a puller that runs inside Aliyun.
    Intranet,
}

/// One finding about an instance's backups.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No successful full backup in the window.
    Missing,
    /// The newest successful full backup ended longer than `max_age` ago.
    Stale {
        backup_id: String,
        newest_end: DateTime<Utc>,
        age: TimeDelta,
        max_age: TimeDelta,
    },
    /// The newest successful full backup has no download URL for the configured network, for
    /// example a `Snapshot`-method backup. This is not a transfer failure.
    NotDownloadable { backup_id: String },
    /// The newest successful full backup is smaller than `fraction` of the previous one.
    SizeDrop {
        backup_id: String,
        current: u64,
        previous: u64,
        fraction: f64,
    },
    /// The newest successful full backup reports a size of 0 bytes.
    ZeroSize { backup_id: String },
    /// A backup in the window has status `Failed`.
    Failed { backup_id: String },
    /// The newest successful full backup passed every check.
    Ok { backup_id: String },
}

impl Verdict {
    /// Returns true for every verdict except `Ok`.
    pub fn is_problem(&self) -> bool {
        !matches!(self, Verdict::Ok { .. })
    }
}

/// The verdicts for one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReport {
    pub instance_id: String,
    /// The problems found, or a single `Ok`.
    pub verdicts: Vec<Verdict>,
    /// When the newest successful full backup ended (its start when RDS gave no end time);
    /// `None` when there is none. The dashboard plots its age.
    pub newest_full_end: Option<DateTime<Utc>>,
}

impl InstanceReport {
    /// Logs each problem as a warning with the instance and backup ids, and an `Ok` as info.
    /// The alerting code turns the same verdicts into messages.
    pub fn log(&self) {
        for verdict in &self.verdicts {
            let instance_id = self.instance_id.as_str();
            match verdict {
                Verdict::Ok { backup_id } => {
                    tracing::info!(instance_id, backup_id, "backup validated")
                }
                Verdict::Missing => {
                    tracing::warn!(instance_id, "no successful full backup in the window")
                }
                Verdict::Stale {
                    backup_id,
                    newest_end,
                    age,
                    max_age,
                } => tracing::warn!(
                    instance_id,
                    backup_id,
                    %newest_end,
                    age_hours = age.num_hours(),
                    max_age_hours = max_age.num_hours(),
                    "newest full backup is older than the maximum age"
                ),
                Verdict::NotDownloadable { backup_id } => {
                    tracing::warn!(
                        instance_id,
                        backup_id,
                        "newest full backup has no download url"
                    )
                }
                Verdict::SizeDrop {
                    backup_id,
                    current,
                    previous,
                    fraction,
                } => tracing::warn!(
                    instance_id,
                    backup_id,
                    current,
                    previous,
                    fraction,
                    "newest full backup is smaller than the minimum fraction of the previous one"
                ),
                Verdict::ZeroSize { backup_id } => {
                    tracing::warn!(instance_id, backup_id, "newest full backup has size 0")
                }
                Verdict::Failed { backup_id } => {
                    tracing::warn!(instance_id, backup_id, "backup failed")
                }
            }
        }
    }
}

/// Validates the backups of `instance_id` listed in a window that ends at `now`.
///
/// The size check needs the previous full backup, so the window should span at least two backup
/// cycles. Backups of other instances in `backups` are ignored.
pub fn validate_instance(
    instance_id: &str,
    backups: &[Backup],
    now: DateTime<Utc>,
    settings: &ValidationSettings,
) -> InstanceReport {
    let own: Vec<&Backup> = backups
        .iter()
        .filter(|backup| backup.instance_id == instance_id)
        .collect();
    let mut verdicts = Vec::new();

    let mut full: Vec<&Backup> = own
        .iter()
        .copied()
        .filter(|backup| {
            backup.status == BackupStatus::Success
                && backup.backup_type == Some(BackupType::FullBackup)
        })
        .collect();
    // A successful backup without an end time is ordered by its start.
    full.sort_by_key(|backup| (finished_at(backup), backup.backup_id.clone()));

    match full.last() {
        None => verdicts.push(Verdict::Missing),
        Some(newest) => verdicts.extend(check_newest(newest, &full, now, settings)),
    }

    let mut failed: Vec<&Backup> = own
        .iter()
        .copied()
        .filter(|backup| backup.status == BackupStatus::Failed)
        .collect();
    failed.sort_by_key(|backup| (backup.start, backup.backup_id.clone()));
    verdicts.extend(failed.into_iter().map(|backup| Verdict::Failed {
        backup_id: backup.backup_id.clone(),
    }));

    if verdicts.is_empty()
        && let Some(newest) = full.last()
    {
        verdicts.push(Verdict::Ok {
            backup_id: newest.backup_id.clone(),
        });
    }
    InstanceReport {
        instance_id: instance_id.to_string(),
        verdicts,
        newest_full_end: full.last().map(|backup| finished_at(backup)),
    }
}

fn finished_at(backup: &Backup) -> DateTime<Utc> {
    backup.end.unwrap_or(backup.start)
}

fn check_newest(
    newest: &Backup,
    full: &[&Backup],
    now: DateTime<Utc>,
    settings: &ValidationSettings,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let backup_id = newest.backup_id.clone();

    let newest_end = finished_at(newest);
    let age = now - newest_end;
    if age > settings.max_age {
        verdicts.push(Verdict::Stale {
            backup_id: backup_id.clone(),
            newest_end,
            age,
            max_age: settings.max_age,
        });
    }

    let url = match settings.network {
        DownloadNetwork::Public => &newest.download_url,
        DownloadNetwork::Intranet => &newest.intranet_download_url,
    };
    if newest.method == Some(BackupMethod::Snapshot) || url.is_none() {
        verdicts.push(Verdict::NotDownloadable {
            backup_id: backup_id.clone(),
        });
    }

    if newest.size_bytes == 0 {
        verdicts.push(Verdict::ZeroSize { backup_id });
        return verdicts;
    }
    // Snapshot sizes are disk sizes, so a backup is compared only with one of the same method.
    let previous = full
        .iter()
        .rev()
        .skip(1)
        .find(|backup| backup.method == newest.method && backup.size_bytes > 0);
    if let Some(previous) = previous {
        let threshold = previous.size_bytes as f64 * settings.min_size_fraction;
        if (newest.size_bytes as f64) < threshold {
            verdicts.push(Verdict::SizeDrop {
                backup_id,
                current: newest.size_bytes,
                previous: previous.size_bytes,
                fraction: settings.min_size_fraction,
            });
        }
    }
    verdicts
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
