//! `template.yaml` keeps the prefixes apart and the policies narrow. Pulled backups and state
//! markers never land under the sync prefix, and no statement has a wildcard action. `iam:PassRole`
//! names only the export role, and only the functions that read exported files may decrypt them.

mod template_support;

use template_support::Template;

fn overlaps(first: &str, second: &str) -> bool {
    first.starts_with(second) || second.starts_with(first)
}

#[test]
fn pull_prefix_and_sync_prefix_are_disjoint() {
    let template = Template::load();
    let pull = template.environment(&template.function("aliyun-backup-pull"));
    let sync = template.environment(&template.function("s3-oss-sync"));
    let pull_prefix = &pull["PULL_PREFIX"];
    let sync_prefix = &sync["SYNC_SOURCE_PREFIX"];
    assert!(!pull_prefix.is_empty());
    assert!(
        !overlaps(pull_prefix, sync_prefix),
        "PULL_PREFIX={pull_prefix} overlaps SYNC_SOURCE_PREFIX={sync_prefix}, so pulled backups \
         would be synced back to OSS"
    );
    assert_eq!(
        &pull["SYNC_SOURCE_PREFIX"], sync_prefix,
        "the pull checks the overlap against the same sync prefix"
    );
}

#[test]
fn state_prefix_is_outside_the_sync_prefix() {
    let template = Template::load();
    let sync = template.environment(&template.function("s3-oss-sync"));
    let state_prefix = &sync["STATE_PREFIX"];
    let sync_prefix = &sync["SYNC_SOURCE_PREFIX"];
    assert!(
        !overlaps(state_prefix, sync_prefix),
        "STATE_PREFIX={state_prefix} overlaps SYNC_SOURCE_PREFIX={sync_prefix}"
    );
}

#[test]
fn rds_exports_land_under_the_sync_prefix() {
    let template = Template::load();
    let start = template.environment(&template.function("rds-export-start"));
    let sync = template.environment(&template.function("s3-oss-sync"));
    assert_eq!(
        format!("{}/", start["EXPORT_PREFIX"]),
        sync["SYNC_SOURCE_PREFIX"],
        "the sync copies what the exports write"
    );
}

#[test]
fn s3_trigger_filters_on_the_sync_prefix() {
    let template = Template::load();
    let function = template.function("s3-oss-sync");
    let sync_prefix = template.environment(&function)["SYNC_SOURCE_PREFIX"].clone();
    let events = template.events(&function);
    let s3_events: Vec<_> = events.iter().filter(|(_, kind, _)| kind == "S3").collect();
    assert_eq!(s3_events.len(), 1);
    let (_, _, properties) = s3_events[0];
    assert_eq!(properties["Events"], "s3:ObjectCreated:*");
    let rules = properties["Filter"]["S3Key"]["Rules"]
        .as_sequence()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["Name"], "prefix");
    assert_eq!(template.resolve(&rules[0]["Value"]), sync_prefix);
}

#[test]
fn no_statement_has_a_wildcard_action() {
    let template = Template::load();
    for function in template.functions() {
        for statement in template.statements(&function) {
            for action in &statement.actions {
                assert!(
                    !action.contains('*'),
                    "{} allows the wildcard action {action}",
                    function.binary
                );
            }
        }
    }
}

#[test]
fn pass_role_names_only_the_export_role() {
    let template = Template::load();
    let export_role = template.resolve(&serde_yaml::from_str("!GetAtt RdsExportRole.Arn").unwrap());
    let mut found = 0;
    for function in template.functions() {
        for statement in template.statements(&function) {
            if statement
                .actions
                .iter()
                .any(|action| action == "iam:PassRole")
            {
                assert_eq!(
                    statement.actions,
                    vec!["iam:PassRole"],
                    "{} mixes iam:PassRole with other actions",
                    function.binary
                );
                assert_eq!(statement.resources, vec![export_role.clone()]);
                assert_eq!(function.binary, "rds-export-start");
                found += 1;
            }
        }
    }
    assert_eq!(
        found, 1,
        "rds-export-start needs iam:PassRole for the export role"
    );
}

#[test]
fn only_readers_of_exported_files_may_decrypt() {
    let template = Template::load();
    let key = template.parameter("ExportKmsKeyArn").unwrap();
    let mut decrypting = Vec::new();
    for function in template.functions() {
        for statement in template.statements(&function) {
            if statement
                .actions
                .iter()
                .any(|action| action == "kms:Decrypt")
            {
                assert_eq!(statement.resources, vec![key.clone()]);
                decrypting.push(function.binary.clone());
            }
        }
    }
    decrypting.sort();
    assert_eq!(decrypting, vec!["rds-export-poll", "s3-oss-sync"]);
}

#[test]
fn every_s3_resource_names_the_bucket() {
    let template = Template::load();
    let bucket = template.parameter("SourceBucketName").unwrap();
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    for function in template.functions() {
        for statement in template.statements(&function) {
            if !statement
                .actions
                .iter()
                .any(|action| action.starts_with("s3:"))
            {
                continue;
            }
            for resource in &statement.resources {
                let object_prefix = resource.strip_prefix(&format!("{bucket_arn}/"));
                assert!(
                    resource == &bucket_arn || object_prefix.is_some_and(|prefix| prefix.len() > 1),
                    "{} grants S3 actions on {resource}, not on a named prefix of {bucket_arn}",
                    function.binary
                );
            }
        }
    }
}
