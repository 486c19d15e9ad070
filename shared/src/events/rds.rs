//! Triggers of the export jobs: RDS EventBridge events, the schedule's explicit input and a direct
//! invocation naming one snapshot.
//!
//! RDS event ids used here, from the RDS event message tables: `RDS-EVENT-0091` automated DB
//! snapshot created, `RDS-EVENT-0169` automated cluster snapshot created, `RDS-EVENT-0159`,
//! `-0160`, `-0161` DB snapshot export failed, canceled, completed, and `RDS-EVENT-0162`, `-0163`,
//! `-0164` the same for cluster snapshot exports.

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::aws::rds::SourceKind;

/// The end state of an export task, as an RDS export event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportOutcome {
    Completed,
    Failed,
    Canceled,
}

/// An RDS EventBridge event, reduced to what the export jobs act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsEvent {
    /// An automated snapshot finished.
    SnapshotCreated {
        kind: SourceKind,
        snapshot_id: String,
        snapshot_arn: Option<String>,
    },
    /// An export task ended. RDS names the exported snapshot, not the task.
    ExportEnded {
        outcome: ExportOutcome,
        kind: SourceKind,
        snapshot_id: Option<String>,
        snapshot_arn: Option<String>,
    },
    /// Any other RDS event; the jobs ignore it on purpose, because a rule may match broadly.
    Ignored { event_id: Option<String> },
}

/// The trigger of an `rds-export-start` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportStartTrigger {
    /// The schedule: export the newest valid snapshot of every configured source.
    Schedule,
    /// One snapshot, named by a direct invocation or an RDS event.
    Snapshot {
        kind: SourceKind,
        snapshot_id: String,
    },
    /// An RDS event that needs no export.
    Ignored { event_id: Option<String> },
}

/// The trigger of an `rds-export-poll` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportPollTrigger {
    /// The schedule: look at every task this deployment started.
    Schedule,
    /// An RDS export event: look at the tasks of this snapshot first.
    ExportEnded {
        outcome: ExportOutcome,
        snapshot_arn: Option<String>,
        snapshot_id: Option<String>,
    },
    Ignored {
        event_id: Option<String>,
    },
}

/// An input that matches none of the accepted shapes.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("invalid RDS event {event_id}: {message}")]
    InvalidRdsEvent { event_id: String, message: String },
    #[error(
        "unrecognized input: expected an RDS EventBridge event, {{\"trigger\":\"schedule\"}} or {{\"snapshot_id\":\"...\",\"source_kind\":\"instance|cluster\"}}: {message}"
    )]
    Unrecognized { message: String },
}

#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    resources: Vec<String>,
    detail: Detail,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Detail {
    #[serde(rename = "EventID")]
    event_id: Option<String>,
    source_identifier: Option<String>,
    source_arn: Option<String>,
}

/// The direct invocation and the schedule's explicit `Input`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectInput {
    trigger: Option<String>,
    snapshot_id: Option<String>,
    source_kind: Option<String>,
}

/// Parses an RDS EventBridge event (`source` is `aws.rds`).
pub fn parse_rds_event(value: &Value) -> Result<RdsEvent, EventError> {
    let envelope: Envelope =
        serde_json::from_value(value.clone()).map_err(|error| EventError::Unrecognized {
            message: error.to_string(),
        })?;
    if envelope.source != "aws.rds" {
        return Err(EventError::Unrecognized {
            message: format!("event source {} is not aws.rds", envelope.source),
        });
    }
    let detail = envelope.detail;
    let Some(event_id) = detail.event_id else {
        return Ok(RdsEvent::Ignored { event_id: None });
    };
    let snapshot_arn = detail
        .source_arn
        .or_else(|| envelope.resources.into_iter().next());
    let cluster = envelope.detail_type.contains("Cluster");
    let kind = if cluster {
        SourceKind::Cluster
    } else {
        SourceKind::Instance
    };

    let outcome = match event_id.as_str() {
        "RDS-EVENT-0091" | "RDS-EVENT-0169" => None,
        "RDS-EVENT-0159" | "RDS-EVENT-0162" => Some(ExportOutcome::Failed),
        "RDS-EVENT-0160" | "RDS-EVENT-0163" => Some(ExportOutcome::Canceled),
        "RDS-EVENT-0161" | "RDS-EVENT-0164" => Some(ExportOutcome::Completed),
        _ => {
            return Ok(RdsEvent::Ignored {
                event_id: Some(event_id),
            });
        }
    };
    let kind = match event_id.as_str() {
        "RDS-EVENT-0169" | "RDS-EVENT-0162" | "RDS-EVENT-0163" | "RDS-EVENT-0164" => {
            SourceKind::Cluster
        }
        "RDS-EVENT-0091" | "RDS-EVENT-0159" | "RDS-EVENT-0160" | "RDS-EVENT-0161" => {
            SourceKind::Instance
        }
        _ => kind,
    };

    match outcome {
        Some(outcome) => Ok(RdsEvent::ExportEnded {
            outcome,
            kind,
            snapshot_id: detail.source_identifier,
            snapshot_arn,
        }),
        None => {
            let Some(snapshot_id) = detail.source_identifier else {
                return Err(EventError::InvalidRdsEvent {
                    event_id,
                    message: "detail.SourceIdentifier is missing".into(),
                });
            };
            Ok(RdsEvent::SnapshotCreated {
                kind,
                snapshot_id,
                snapshot_arn,
            })
        }
    }
}

/// Parses the input of `rds-export-start`: an RDS event, `{"trigger":"schedule"}`, or
/// `{"snapshot_id":"...","source_kind":"instance"}` (`source_kind` defaults to `instance`).
pub fn parse_export_start(value: &Value) -> Result<ExportStartTrigger, EventError> {
    if is_rds_event(value) {
        return Ok(match parse_rds_event(value)? {
            RdsEvent::SnapshotCreated {
                kind, snapshot_id, ..
            } => ExportStartTrigger::Snapshot { kind, snapshot_id },
            RdsEvent::ExportEnded { .. } => ExportStartTrigger::Ignored { event_id: None },
            RdsEvent::Ignored { event_id } => ExportStartTrigger::Ignored { event_id },
        });
    }
    let input = parse_direct(value)?;
    match (input.trigger.as_deref(), input.snapshot_id) {
        (_, Some(snapshot_id)) if !snapshot_id.trim().is_empty() => {
            let kind = parse_kind(input.source_kind.as_deref())?;
            Ok(ExportStartTrigger::Snapshot { kind, snapshot_id })
        }
        (Some("schedule"), None) => Ok(ExportStartTrigger::Schedule),
        _ => Err(EventError::Unrecognized {
            message: "no trigger or snapshot_id".into(),
        }),
    }
}

/// Parses the input of `rds-export-poll`: an RDS event or `{"trigger":"schedule"}`.
pub fn parse_export_poll(value: &Value) -> Result<ExportPollTrigger, EventError> {
    if is_rds_event(value) {
        return Ok(match parse_rds_event(value)? {
            RdsEvent::ExportEnded {
                outcome,
                snapshot_arn,
                snapshot_id,
                ..
            } => ExportPollTrigger::ExportEnded {
                outcome,
                snapshot_arn,
                snapshot_id,
            },
            RdsEvent::SnapshotCreated { .. } => ExportPollTrigger::Ignored { event_id: None },
            RdsEvent::Ignored { event_id } => ExportPollTrigger::Ignored { event_id },
        });
    }
    let input = parse_direct(value)?;
    match input.trigger.as_deref() {
        Some("schedule") if input.snapshot_id.is_none() => Ok(ExportPollTrigger::Schedule),
        _ => Err(EventError::Unrecognized {
            message: "expected trigger \"schedule\"".into(),
        }),
    }
}

fn is_rds_event(value: &Value) -> bool {
    value.get("detail-type").is_some()
        && value.get("source").and_then(Value::as_str) == Some("aws.rds")
}

fn parse_direct(value: &Value) -> Result<DirectInput, EventError> {
    serde_json::from_value(value.clone()).map_err(|error| EventError::Unrecognized {
        message: error.to_string(),
    })
}

fn parse_kind(value: Option<&str>) -> Result<SourceKind, EventError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("instance") => Ok(SourceKind::Instance),
        Some("cluster") => Ok(SourceKind::Cluster),
        Some(other) => Err(EventError::Unrecognized {
            message: format!("source_kind {other} is neither instance nor cluster"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rds_event(detail_type: &str, event_id: &str, source_id: &str, arn: &str) -> Value {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": "aws.rds",
            "account": "123456789012",
            "time": "2024-01-01T00:10:00Z",
            "region": "us-east-1",
            "resources": [arn],
            "detail": {
                "EventCategories": ["backup"],
                "SourceType": "SNAPSHOT",
                "SourceArn": arn,
                "Date": "2024-01-01T00:10:00.000Z",
                "SourceIdentifier": source_id,
                "EventID": event_id
            }
        })
    }

    #[test]
    fn automated_instance_snapshot_starts_an_export() {
        let arn = "arn:aws:rds:us-east-1:123456789012:snapshot:rds:prod-2024-01-01-00-05";
        let event = rds_event(
            "RDS DB Snapshot Event",
            "RDS-EVENT-0091",
            "rds:prod-2024-01-01-00-05",
            arn,
        );
        let trigger = parse_export_start(&event).unwrap_or(ExportStartTrigger::Schedule);
        assert_eq!(
            trigger,
            ExportStartTrigger::Snapshot {
                kind: SourceKind::Instance,
                snapshot_id: "rds:prod-2024-01-01-00-05".into()
            }
        );
    }

    #[test]
    fn automated_cluster_snapshot_starts_an_export() {
        let arn = "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:aurora-2024-01-01-00-05";
        let event = rds_event(
            "RDS DB Cluster Snapshot Event",
            "RDS-EVENT-0169",
            "rds:aurora-2024-01-01-00-05",
            arn,
        );
        let trigger = parse_export_start(&event).unwrap_or(ExportStartTrigger::Schedule);
        assert_eq!(
            trigger,
            ExportStartTrigger::Snapshot {
                kind: SourceKind::Cluster,
                snapshot_id: "rds:aurora-2024-01-01-00-05".into()
            }
        );
    }

    #[test]
    fn export_events_map_to_outcomes() {
        let arn = "arn:aws:rds:us-east-1:123456789012:snapshot:rds:prod-1";
        let cases = [
            ("RDS-EVENT-0159", ExportOutcome::Failed),
            ("RDS-EVENT-0160", ExportOutcome::Canceled),
            ("RDS-EVENT-0161", ExportOutcome::Completed),
            ("RDS-EVENT-0162", ExportOutcome::Failed),
            ("RDS-EVENT-0163", ExportOutcome::Canceled),
            ("RDS-EVENT-0164", ExportOutcome::Completed),
        ];
        for (event_id, expected) in cases {
            let event = rds_event("RDS DB Snapshot Event", event_id, "rds:prod-1", arn);
            let trigger = parse_export_poll(&event).unwrap_or(ExportPollTrigger::Schedule);
            assert_eq!(
                trigger,
                ExportPollTrigger::ExportEnded {
                    outcome: expected,
                    snapshot_arn: Some(arn.into()),
                    snapshot_id: Some("rds:prod-1".into())
                },
                "event {event_id}"
            );
        }
    }

    #[test]
    fn unrelated_rds_events_are_ignored() {
        let event = rds_event("RDS DB Instance Event", "RDS-EVENT-0004", "prod", "arn:x");
        let start = parse_export_start(&event).unwrap_or(ExportStartTrigger::Schedule);
        assert_eq!(
            start,
            ExportStartTrigger::Ignored {
                event_id: Some("RDS-EVENT-0004".into())
            }
        );
    }

    #[test]
    fn direct_invocation_names_one_snapshot() {
        let input = json!({"snapshot_id": "manual-1", "source_kind": "Cluster"});
        let trigger = parse_export_start(&input).unwrap_or(ExportStartTrigger::Schedule);
        let expected = ExportStartTrigger::Snapshot {
            kind: SourceKind::Cluster,
            snapshot_id: "manual-1".into(),
        };
        assert_eq!(trigger, expected);
    }

    #[test]
    fn schedule_input_is_recognized() {
        let input = json!({"trigger": "schedule"});
        assert_eq!(
            parse_export_start(&input).ok(),
            Some(ExportStartTrigger::Schedule)
        );
        assert_eq!(
            parse_export_poll(&input).ok(),
            Some(ExportPollTrigger::Schedule)
        );
    }

    #[test]
    fn unknown_input_is_rejected() {
        assert!(parse_export_start(&json!({"snapshot": "x"})).is_err());
        assert!(parse_export_start(&json!({"snapshot_id": "x", "source_kind": "table"})).is_err());
        assert!(parse_export_poll(&json!({})).is_err());
    }
}
