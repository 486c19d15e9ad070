//! A panic inside a handler becomes an error reply, and the same process goes on serving. The
//! probe binary runs the `lambda_runtime` loop that every function runs, against the
//! `cargo lambda watch` Runtime API on 127.0.0.1.
//!
//! This holds only while panics unwind: with `panic = "abort"` the process would end and Lambda
//! would report a runtime exit instead. The test profile unwinds by default, and
//! `release_profile_keeps_unwinding` checks that the profile `sam build` uses does too.

use std::path::Path;

use serde_json::{Value, json};
use testkit::lambda::{Invocation, LambdaWatch};

fn invoke(watch: &LambdaWatch, event: Value) -> Invocation {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&event).unwrap()).unwrap();
    watch.invoke(file.path()).unwrap()
}

fn reply(invocation: &Invocation) -> Value {
    let start = invocation.output.find('{').expect("a JSON reply");
    let end = invocation.output.rfind('}').expect("a JSON reply");
    serde_json::from_str(&invocation.output[start..=end]).unwrap()
}

#[test]
fn handler_panic_becomes_error_reply() {
    let binary = Path::new(env!("CARGO_BIN_EXE_panic_probe"));
    let watch = LambdaWatch::start(binary, &[]).unwrap();

    let first = invoke(&watch, json!({ "trigger": "schedule" }));
    assert!(first.succeeded, "{}\n{}", first.output, watch.log());
    let first = reply(&first);
    assert_eq!(first["handled"], 1);

    let panicked = invoke(&watch, json!({ "panic": "probe panicked on purpose" }));
    assert!(!panicked.succeeded, "{}", panicked.output);
    assert!(
        panicked.output.contains("probe panicked on purpose"),
        "the error reply names the panic: {}\n{}",
        panicked.output,
        watch.log()
    );

    let after = invoke(&watch, json!({ "trigger": "schedule" }));
    assert!(after.succeeded, "{}\n{}", after.output, watch.log());
    let after = reply(&after);
    assert_eq!(
        after["handled"], 3,
        "the same process handled all three events"
    );
    assert_eq!(after["pid"], first["pid"]);
}

#[test]
fn release_profile_keeps_unwinding() {
    let root = testkit::paths::workspace_root().unwrap();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let release = manifest
        .split("[profile.release]")
        .nth(1)
        .expect("Cargo.toml has a [profile.release] section");
    let section = release.split("\n[").next().unwrap_or_default();
    let panic_lines: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("panic"))
        .collect();
    assert_eq!(panic_lines, vec!["panic = \"unwind\""]);
}
