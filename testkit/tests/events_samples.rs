//! The sample events in `events/` cover every trigger that `template.yaml` declares, and each parses
//! as the trigger it stands for. Each is also fed through its function's handler by some test, in
//! `testkit/tests` or `functions/*/tests`, so a sample cannot rot unnoticed.

mod template_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backup_bridge::events::parse_s3_notification;
use backup_bridge::events::rds::{
    ExportPollTrigger, ExportStartTrigger, parse_export_poll, parse_export_start,
};
use backup_bridge::jobs::pull::PullTrigger;
use serde_json::Value;
use template_support::Template;

/// Triggers without a sample yet, as (function, event type). The test fails once such a sample
/// exists, so that the entry is removed.
const SAMPLES_NOT_YET_WRITTEN: &[(&str, &str)] = &[];

/// Returns the samples by function binary, each as (file name, parsed JSON).
fn samples(template: &Template) -> BTreeMap<String, Vec<(String, Value)>> {
    let binaries: Vec<String> = template
        .functions()
        .into_iter()
        .map(|function| function.binary)
        .collect();
    let mut by_function: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for path in sample_paths() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let binary = binaries
            .iter()
            .filter(|binary| name.starts_with(&format!("{binary}-")))
            .max_by_key(|binary| binary.len())
            .unwrap_or_else(|| panic!("{name} is not named <function>-<case>.json"));
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("{name} is not valid JSON: {error}"));
        by_function
            .entry(binary.clone())
            .or_default()
            .push((name, value));
    }
    by_function
}

fn workspace_root() -> PathBuf {
    testkit::paths::workspace_root().unwrap()
}

fn sample_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("events"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
}

/// Returns true when `event` matches an EventBridge `pattern`: every field of the pattern is in the
/// event, and an array in the pattern lists the allowed values.
fn matches_pattern(pattern: &serde_yaml::Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_mapping() else {
        return false;
    };
    fields.iter().all(|(key, expected)| {
        let key = key.as_str().unwrap_or_default();
        let Some(actual) = event.get(key) else {
            return false;
        };
        match expected {
            serde_yaml::Value::Sequence(allowed) => allowed
                .iter()
                .any(|value| value.as_str().is_some_and(|value| actual == value)),
            nested @ serde_yaml::Value::Mapping(_) => matches_pattern(nested, actual),
            _ => false,
        }
    })
}

#[test]
fn every_template_trigger_has_a_sample() {
    let template = Template::load();
    let samples = samples(&template);
    for function in template.functions() {
        let own = samples.get(&function.binary).cloned().unwrap_or_default();
        for (event_name, kind, properties) in template.events(&function) {
            let found = match kind.as_str() {
                // The sample `<function>-schedule.json` is exactly what the schedule sends.
                "ScheduleV2" => {
                    let input: Value =
                        serde_json::from_str(properties["Input"].as_str().unwrap()).unwrap();
                    own.iter()
                        .any(|(name, value)| name.ends_with("-schedule.json") && *value == input)
                }
                "EventBridgeRule" => own
                    .iter()
                    .any(|(_, value)| matches_pattern(&properties["Pattern"], value)),
                "S3" => {
                    let prefix =
                        template.resolve(&properties["Filter"]["S3Key"]["Rules"][0]["Value"]);
                    own.iter().any(|(_, value)| {
                        value["Records"][0]["eventSource"] == "aws:s3"
                            && value["Records"][0]["s3"]["object"]["key"]
                                .as_str()
                                .is_some_and(|key| key.starts_with(&prefix))
                    })
                }
                "HttpApi" => own.iter().any(|(_, value)| {
                    value["version"] == "2.0" && value["requestContext"]["http"].is_object()
                }),
                other => panic!("no sample rule for event type {other}"),
            };
            let pending =
                SAMPLES_NOT_YET_WRITTEN.contains(&(function.binary.as_str(), kind.as_str()));
            if pending {
                assert!(
                    !found,
                    "{} now has a sample for its {kind} trigger; remove it from \
                     SAMPLES_NOT_YET_WRITTEN",
                    function.binary
                );
                continue;
            }
            assert!(
                found,
                "{} has no sample in events/ for its {kind} trigger {event_name}",
                function.binary
            );
        }
    }
}

#[test]
fn every_sample_parses_as_its_trigger() {
    let template = Template::load();
    for (binary, samples) in samples(&template) {
        for (name, value) in samples {
            let recognised = match binary.as_str() {
                "s3-oss-sync" => parse_s3_notification(value.clone()).is_ok(),
                "rds-export-start" => !matches!(
                    parse_export_start(&value),
                    Err(_) | Ok(ExportStartTrigger::Ignored { .. })
                ),
                "rds-export-poll" => !matches!(
                    parse_export_poll(&value),
                    Err(_) | Ok(ExportPollTrigger::Ignored { .. })
                ),
                "aliyun-backup-pull" => PullTrigger::from_event(&value).is_ok(),
                // The api samples are HTTP API requests, routed by the api crate's own tests.
                "api" => value["version"] == "2.0",
                other => panic!("no trigger parser is known for {other}"),
            };
            assert!(recognised, "{name} is not a trigger that {binary} accepts");
        }
    }
}

/// Returns the text of every test source that may feed a sample through a handler.
fn test_sources() -> String {
    let root = workspace_root();
    let mut directories = vec![root.join("testkit/tests")];
    for entry in std::fs::read_dir(root.join("functions")).unwrap() {
        directories.push(entry.unwrap().path().join("tests"));
    }
    let mut text = String::new();
    for directory in directories {
        collect_rust_sources(&directory, &mut text);
    }
    text
}

fn collect_rust_sources(directory: &Path, text: &mut String) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_sources(&path, text);
        } else if path.extension().is_some_and(|extension| extension == "rs")
            && !path.ends_with("events_samples.rs")
        {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn every_sample_is_used_by_a_handler_test() {
    let sources = test_sources();
    for path in sample_paths() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            sources.contains(&format!("\"{name}\"")) || sources.contains(&format!("events/{name}")),
            "no test in testkit/tests or functions/*/tests feeds {name} through its handler"
        );
    }
}
