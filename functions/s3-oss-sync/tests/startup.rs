//! `s3-oss-sync` started without its configuration: the process must end before the runtime
//! loop with a message that names the missing variable, not the fields of an error type.

use std::process::Command;

#[test]
fn missing_config_prints_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_s3-oss-sync"))
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        // Nothing listens here, and the process must fail before it would call it.
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .expect("the function binary runs");

    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error: missing environment variable"),
        "stderr: {stderr}\nstdout: {stdout}"
    );
    assert!(!stderr.contains("Missing {"), "{stderr}");
    // The same message is logged, so it reaches CloudWatch with the init failure.
    assert!(stdout.contains("the function cannot start"), "{stdout}");
}
