//! The wording of alert messages in zh-CN and en: a title, what happened and what to check next
//! for each kind, and labels for severities, resources and facts.

use super::model::{AlertKind, FactName, Severity};
use super::rules::Language;

/// The fixed text of one kind in one language.
#[derive(Debug, Clone, Copy)]
pub struct KindText {
    pub title: &'static str,
    pub what_happened: &'static str,
    pub next_step: &'static str,
}

/// Returns the title, description and next step for a kind.
pub fn kind_text(kind: AlertKind, language: Language) -> KindText {
    match language {
        Language::ZhCn => kind_text_zh(kind),
        Language::En => kind_text_en(kind),
    }
}

fn text(title: &'static str, what_happened: &'static str, next_step: &'static str) -> KindText {
    KindText {
        title,
        what_happened,
        next_step,
    }
}

fn kind_text_zh(kind: AlertKind) -> KindText {
    match kind {
        AlertKind::BackupMissing => text(
            "RDS 备份缺失",
            "在应有备份的时间范围内没有找到备份。",
            "在阿里云控制台检查该实例的备份策略和最近的备份任务。",
        ),
        AlertKind::BackupStale => text(
            "RDS 备份超时未完成",
            "最新备份的完成时间早于配置的最长间隔。",
            "在阿里云控制台检查该实例的备份策略，确认备份任务是否在运行或失败。",
        ),
        AlertKind::BackupSizeDrop => text(
            "RDS 备份大小骤降",
            "备份比上一次小得多，可能缺少数据。",
            "对比两次备份的库表，确认是否有库表被删除或备份不完整。",
        ),
        AlertKind::BackupNotDownloadable => text(
            "RDS 备份无法下载",
            "备份存在，但下载链接或对象无法读取。",
            "检查备份下载链接是否过期、RAM 权限以及网络访问设置。",
        ),
        AlertKind::TransferFailed => text(
            "备份复制失败",
            "在云之间复制备份文件失败。",
            "查看错误码和原因，检查两端存储桶的权限与配额；下次运行会重试。",
        ),
        AlertKind::ChecksumMismatch => text(
            "备份校验值不一致",
            "复制后的对象校验值与源对象不同，副本不可信。",
            "删除该副本并重新复制；如果重复出现，检查源对象是否在复制期间被改写。",
        ),
        AlertKind::ExportStartFailed => text(
            "RDS 快照导出启动失败",
            "无法启动快照导出任务。",
            "检查导出使用的 IAM 角色、KMS 密钥权限和目标 S3 存储桶。",
        ),
        AlertKind::ExportFailed => text(
            "RDS 快照导出失败",
            "快照导出任务以失败结束。",
            "在 AWS 控制台查看导出任务的失败原因和失败的表。",
        ),
        AlertKind::ExportCanceled => text(
            "RDS 快照导出已取消",
            "快照导出任务被取消。",
            "确认是否有人手动取消；如需要，重新启动导出。",
        ),
        AlertKind::ExportStuck => text(
            "RDS 快照导出停滞",
            "快照导出任务长时间没有进展。",
            "在 AWS 控制台查看导出进度；必要时取消后重新导出。",
        ),
        AlertKind::SyncFailed => text(
            "同步运行失败",
            "一次同步运行整体失败。",
            "查看该请求的日志，检查配置和两端的访问权限。",
        ),
        AlertKind::SyncIncomplete => text(
            "同步未完成",
            "同步运行结束时仍有对象未复制。",
            "查看未复制对象的原因；下次运行会继续复制。",
        ),
        AlertKind::ConfigurationInvalid => text(
            "配置无效",
            "函数的配置无效，无法工作。",
            "按错误信息修正该函数的环境变量或配置对象后重新部署。",
        ),
    }
}

fn kind_text_en(kind: AlertKind) -> KindText {
    match kind {
        AlertKind::BackupMissing => text(
            "RDS backup missing",
            "No backup was found in the period where one is expected.",
            "Check the instance's backup policy and recent backup jobs in the Aliyun console.",
        ),
        AlertKind::BackupStale => text(
            "RDS backup is overdue",
            "The newest backup finished longer ago than the configured maximum age.",
            "Check the instance's backup policy in the Aliyun console and whether backup jobs run or fail.",
        ),
        AlertKind::BackupSizeDrop => text(
            "RDS backup size dropped",
            "The backup is much smaller than the previous one and may be missing data.",
            "Compare the databases and tables of both backups to see whether data was dropped or the backup is incomplete.",
        ),
        AlertKind::BackupNotDownloadable => text(
            "RDS backup cannot be downloaded",
            "The backup exists but its download link or object cannot be read.",
            "Check whether the download link expired, the RAM permissions and the network access settings.",
        ),
        AlertKind::TransferFailed => text(
            "Backup copy failed",
            "Copying a backup file between clouds failed.",
            "Read the error code and cause, and check permissions and quotas on both buckets; the next run retries.",
        ),
        AlertKind::ChecksumMismatch => text(
            "Backup checksum mismatch",
            "The copy's checksum differs from the source object's, so the copy cannot be trusted.",
            "Delete the copy and copy it again; if it repeats, check whether the source was rewritten during the copy.",
        ),
        AlertKind::ExportStartFailed => text(
            "RDS snapshot export failed to start",
            "The snapshot export task could not be started.",
            "Check the export's IAM role, its KMS key permissions and the target S3 bucket.",
        ),
        AlertKind::ExportFailed => text(
            "RDS snapshot export failed",
            "The snapshot export task ended in failure.",
            "Read the export task's failure cause and failed tables in the AWS console.",
        ),
        AlertKind::ExportCanceled => text(
            "RDS snapshot export canceled",
            "The snapshot export task was canceled.",
            "Confirm whether someone canceled it on purpose; start the export again if needed.",
        ),
        AlertKind::ExportStuck => text(
            "RDS snapshot export stuck",
            "The snapshot export task has made no progress for a long time.",
            "Check the export's progress in the AWS console; cancel and export again if needed.",
        ),
        AlertKind::SyncFailed => text(
            "Sync run failed",
            "A sync run failed as a whole.",
            "Read the logs of the request, and check the configuration and access to both sides.",
        ),
        AlertKind::SyncIncomplete => text(
            "Sync incomplete",
            "A sync run ended with objects left uncopied.",
            "Read why the objects were not copied; the next run continues the copy.",
        ),
        AlertKind::ConfigurationInvalid => text(
            "Invalid configuration",
            "The function's configuration is invalid, so it cannot work.",
            "Fix the function's environment variables or configuration object as the error says, then deploy again.",
        ),
    }
}

/// Returns the label of a severity, e.g. `【严重】` or `[CRITICAL]`.
pub fn severity_label(severity: Severity, language: Language) -> &'static str {
    match (language, severity) {
        (Language::ZhCn, Severity::Critical) => "【严重】",
        (Language::ZhCn, Severity::Warning) => "【警告】",
        (Language::ZhCn, Severity::Info) => "【提示】",
        (Language::En, Severity::Critical) => "[CRITICAL]",
        (Language::En, Severity::Warning) => "[WARNING]",
        (Language::En, Severity::Info) => "[INFO]",
    }
}

/// Returns the WeCom markdown font colour of a severity. WeCom supports three colours: `warning`
/// (orange-red), `comment` (grey) and `info` (green).
pub fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "warning",
        Severity::Warning => "comment",
        Severity::Info => "info",
    }
}

/// Labels of the fixed parts of a message.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub function: &'static str,
    pub request_id: &'static str,
    pub time: &'static str,
    pub shanghai: &'static str,
    pub what_happened: &'static str,
    pub affected: &'static str,
    pub next_step: &'static str,
    pub instance: &'static str,
    pub backup_id: &'static str,
    pub snapshot: &'static str,
    pub export_id: &'static str,
    pub bucket: &'static str,
    pub object: &'static str,
    /// Separates facts within one item line.
    pub separator: &'static str,
    pub colon: &'static str,
}

pub fn labels(language: Language) -> Labels {
    match language {
        Language::ZhCn => Labels {
            function: "函数",
            request_id: "请求 ID",
            time: "时间",
            shanghai: "北京时间",
            what_happened: "情况",
            affected: "涉及",
            next_step: "下一步",
            instance: "实例",
            backup_id: "备份",
            snapshot: "快照",
            export_id: "导出任务",
            bucket: "存储桶",
            object: "对象",
            separator: "；",
            colon: "：",
        },
        Language::En => Labels {
            function: "Function",
            request_id: "Request ID",
            time: "Time",
            shanghai: "Asia/Shanghai",
            what_happened: "What happened",
            affected: "Affected",
            next_step: "Next step",
            instance: "Instance",
            backup_id: "Backup",
            snapshot: "Snapshot",
            export_id: "Export task",
            bucket: "Bucket",
            object: "Object",
            separator: "; ",
            colon: ": ",
        },
    }
}

/// Returns the label of a fact.
pub fn fact_label(name: FactName, language: Language) -> &'static str {
    match language {
        Language::ZhCn => match name {
            FactName::Size => "大小",
            FactName::PreviousSize => "上次大小",
            FactName::ExpectedChecksum => "期望校验值",
            FactName::ActualChecksum => "实际校验值",
            FactName::ErrorCode => "错误码",
            FactName::Cause => "原因",
            FactName::BackupEndTime => "最新备份结束时间",
            FactName::BackupAge => "距今",
            FactName::MaxAge => "最长间隔",
            FactName::Status => "状态",
            FactName::Progress => "进度",
            FactName::Elapsed => "已持续",
            FactName::Detail => "详情",
        },
        Language::En => match name {
            FactName::Size => "size",
            FactName::PreviousSize => "previous size",
            FactName::ExpectedChecksum => "expected checksum",
            FactName::ActualChecksum => "actual checksum",
            FactName::ErrorCode => "error code",
            FactName::Cause => "cause",
            FactName::BackupEndTime => "newest backup ended",
            FactName::BackupAge => "age",
            FactName::MaxAge => "maximum age",
            FactName::Status => "status",
            FactName::Progress => "progress",
            FactName::Elapsed => "for",
            FactName::Detail => "detail",
        },
    }
}
