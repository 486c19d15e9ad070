//! The pull's hand-over adapter over `aws-sdk-lambda` against the fake Lambda `Invoke` endpoint:
//! real SigV4-signed HTTP on 127.0.0.1, asynchronous invocation, payload intact, errors mapped to
//! a retry decision.

use backup_bridge::jobs::pull::{Continuation, ContinuationPayload};
use backup_bridge::lambda::pull::LambdaSelfInvoke;
use backup_bridge::transfer::{PartRecord, TransferState};
use chrono::{TimeZone, Utc};
use testkit::fake_lambda::{FakeLambda, Fault};

const FUNCTION: &str = "backup-bridge-aliyun-backup-pull";

fn client(fake: &FakeLambda) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&testkit::aws::sdk_config(&fake.endpoint()))
}

fn payload(parts: u32) -> ContinuationPayload {
    let part_size = 64 * 1024 * 1024;
    ContinuationPayload {
        instance_id: "rm-bp1demo0000001".into(),
        backup_id: "1234567890".into(),
        backup_start: Utc.with_ymd_and_hms(2026, 12, 3, 18, 0, 0).unwrap(),
        backup_end: Some(Utc.with_ymd_and_hms(2026, 12, 3, 18, 40, 0).unwrap()),
        expected_crc64: 11051210869376104954,
        run: 2,
        state: TransferState {
            key: "aliyun-rds/rm-bp1demo0000001/2026/12/03/1234567890/hins_qp.xb".into(),
            upload_id: "upload-1".into(),
            size: part_size * (u64::from(parts) + 3),
            part_size,
            next_part: parts + 1,
            bytes_done: part_size * u64::from(parts),
            crc64: 42,
            parts: (1..=parts)
                .map(|part_number| PartRecord {
                    part_number,
                    etag: format!("\"{part_number:032x}\""),
                    size: part_size,
                    crc64: None,
                })
                .collect(),
        },
    }
}

#[tokio::test]
async fn hands_the_continuation_to_an_asynchronous_invocation() {
    let fake = FakeLambda::start(&[FUNCTION]).await.unwrap();
    let invoke = LambdaSelfInvoke::new(client(&fake), FUNCTION);
    let payload = payload(3);

    invoke.hand_over(&payload).await.unwrap();

    let invocations = fake.invocations();
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].function_name, FUNCTION);
    assert_eq!(invocations[0].invocation_type, "Event");
    assert_eq!(invocations[0].payload, payload.to_event());
}

#[tokio::test]
async fn an_unknown_function_is_a_permanent_error_that_names_it() {
    let fake = FakeLambda::start(&[FUNCTION]).await.unwrap();
    let invoke = LambdaSelfInvoke::new(client(&fake), "no-such-function");

    let error = invoke.hand_over(&payload(1)).await.unwrap_err();

    assert!(!error.retryable, "{error}");
    assert!(error.message.contains("no-such-function"), "{error}");
    assert!(
        error.message.contains("ResourceNotFoundException"),
        "{error}"
    );
    assert!(fake.invocations().is_empty());
}

#[tokio::test]
async fn one_throttled_reply_is_retried_by_the_sdk() {
    let fake = FakeLambda::start(&[FUNCTION]).await.unwrap();
    fake.fail_next(&[Fault::Throttled]);
    let invoke = LambdaSelfInvoke::new(client(&fake), FUNCTION);

    invoke.hand_over(&payload(1)).await.unwrap();

    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.invocations().len(), 1);
}

#[tokio::test]
async fn lasting_throttling_is_reported_as_retryable() {
    let fake = FakeLambda::start(&[FUNCTION]).await.unwrap();
    fake.fail_next(&[Fault::Throttled; 10]);
    let invoke = LambdaSelfInvoke::new(client(&fake), FUNCTION);

    let error = invoke.hand_over(&payload(1)).await.unwrap_err();

    assert!(error.retryable, "{error}");
    assert!(
        error.message.contains("TooManyRequestsException"),
        "{error}"
    );
    assert!(fake.invocations().is_empty());
}
