//! `make demo`: the pipeline on the local clouds, printed in English and Chinese.
//!
//! It starts moto and the fake OSS on 127.0.0.1, uploads an RDS export file set to S3, sends the
//! S3 events to the `s3-oss-sync` binary running its Lambda runtime loop against `cargo lambda
//! watch`, and prints what happened to each object. It ends with the API's `GET /status` over the
//! same clouds.
//! Everything it starts stops when it ends.

use std::io::Write;

use anyhow::Context;
use backup_bridge::checksum::crc64;
use serde_json::Value;
use testkit::api_local::ApiLocal;
use testkit::fake_rds_export::FakeRdsExport;
use testkit::lambda::LambdaWatch;
use testkit::local_clouds::{
    ExportDemo, LocalClouds, OSS_BUCKET, SeededBackup, WECOM_KEY, prepare_export_demo,
    sample_bytes, with_wecom,
};
use testkit::s3_events::{CreatedObject, object_created_event};

const EXPORT_ID: &str = "bb-prod-mysql-2026-12-04-03-00-5f3a9c1e";
const MIB: usize = 1024 * 1024;

/// One file of the demo export: key below `mysql/<export id>/`, size, and the S3 event name.
struct ExportFile {
    key: String,
    size: usize,
    event: &'static str,
}

fn export_files() -> Vec<ExportFile> {
    let file = |rest: &str, size: usize, event: &'static str| ExportFile {
        key: format!("mysql/{EXPORT_ID}/{rest}"),
        size,
        event,
    };
    vec![
        file(&format!("export_info_{EXPORT_ID}.json"), 2 * 1024, "Put"),
        file(
            "shop/shop.orders/1/part-00000-7f3a9c1e-1d2b-4c5e-9a8b-0c1d2e3f4a5b-c000.gz.parquet",
            64 * MIB + 12_345,
            "CompleteMultipartUpload",
        ),
        file(
            "shop/shop.customers/1/part-00000-0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e-c000.gz.parquet",
            3 * MIB + 789,
            "Put",
        ),
        file(
            "订单库/订单库.order items+v2$archive/1/part-00000-备份 1.gz.parquet",
            700 * 1024,
            "Put",
        ),
        file(
            "shop/shop.empty_table/1/part-00000-00000000-0000-0000-0000-000000000000-c000.gz.parquet",
            0,
            "Put",
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    println!("== backup-bridge demo / 演示 ==");
    println!("[1/7] Starting the local clouds / 启动本地模拟云 (moto S3, fake OSS)");
    let clouds = LocalClouds::start("demo-exports").await?;
    println!(
        "      moto S3:  {}  bucket s3://{}",
        clouds.moto_url, clouds.bucket
    );
    println!(
        "      fake OSS: 127.0.0.1:{}  bucket oss://{OSS_BUCKET}",
        clouds.oss.port()
    );

    println!("[2/7] Uploading an RDS export to S3 / 上传 RDS 导出文件到 S3: mysql/{EXPORT_ID}/");
    let files = export_files();
    let mut uploaded = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let body = sample_bytes(file.size, index as u64 + 1);
        let crc = crc64(&body);
        let etag = clouds.put_s3_object(&file.key, body).await?;
        uploaded.push((etag, crc));
    }

    println!("[3/7] Running s3-oss-sync under `cargo lambda watch` / 通过 Lambda 运行时调用函数");
    let binary = std::env::current_exe()?.with_file_name("s3-oss-sync");
    let watch = LambdaWatch::start(&binary, &clouds.sync_env())?;
    let event_dir = tempfile::tempdir()?;
    let mut results = Vec::new();
    for (index, (file, (etag, _))) in files.iter().zip(&uploaded).enumerate() {
        let event = object_created_event(&[CreatedObject {
            event: file.event,
            bucket: &clouds.bucket,
            key: &file.key,
            size: file.size as u64,
            etag,
            sequencer: &format!("0062F1A4B3C2D1E{index:03X}"),
        }]);
        let path = event_dir.path().join(format!("event-{index}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&event)?)?;
        let invocation = watch.invoke(&path)?;
        results.push(outcome_of(&invocation.output));
        print!(".");
        std::io::stdout().flush()?;
    }
    println!();

    // S3 delivers at least once: the same event again must change nothing.
    let repeat = event_dir.path().join("event-1.json");
    let repeated = outcome_of(&watch.invoke(&repeat)?.output);

    // A different object already at the OSS key is a conflict: nothing is overwritten, and the
    // WeCom group hears about it.
    let conflict_key =
        format!("mysql/{EXPORT_ID}/shop/shop.audit_log/1/part-00000-conflict.gz.parquet");
    let conflict_etag = clouds
        .put_s3_object(&conflict_key, sample_bytes(128 * 1024, 99))
        .await?;
    clouds.oss.put_object_direct(
        OSS_BUCKET,
        &format!("iotdb-backup/{conflict_key}"),
        b"an older, different file",
        &[],
    )?;
    let conflict_event = object_created_event(&[CreatedObject {
        event: "Put",
        bucket: &clouds.bucket,
        key: &conflict_key,
        size: 128 * 1024,
        etag: &conflict_etag,
        sequencer: "0062F1A4B3C2D1EFFF",
    }]);
    let conflict_path = event_dir.path().join("event-conflict.json");
    std::fs::write(&conflict_path, serde_json::to_vec_pretty(&conflict_event)?)?;
    let conflicted = outcome_of(&watch.invoke(&conflict_path)?.output);
    drop(watch);

    println!("[4/7] Results / 结果");
    println!(
        "{:<70} {:>10} {:>21} {:<10}",
        "source key → OSS key / 源 key → OSS key", "bytes/字节", "CRC-64", "outcome/结果"
    );
    for ((file, (_, crc)), outcome) in files.iter().zip(&uploaded).zip(&results) {
        let target = format!("iotdb-backup/{}", file.key);
        let stored = clouds.oss.object(OSS_BUCKET, &target);
        let verified = stored
            .as_ref()
            .is_some_and(|object| object.crc64 == *crc && object.size == file.size as u64);
        println!("{}", file.key);
        println!(
            "  → oss://{OSS_BUCKET}/{:<50} {:>10} {:>21} {:<10} {}",
            target,
            file.size,
            crc,
            outcome,
            if verified {
                "✔ verified / 已校验"
            } else {
                "✘ NOT in OSS / 未到达 OSS"
            }
        );
    }
    println!(
        "Repeated delivery of the 64 MiB event / 重复投递 64 MiB 事件: {repeated} (expected already_synced / 应为已同步)"
    );
    println!(
        "Conflicting object at the OSS key / OSS 中同名对象内容不同: {conflicted} (expected failed, not overwritten / 应失败且不覆盖)"
    );
    let pending = clouds.oss.pending_uploads(OSS_BUCKET).len();
    println!("Incomplete multipart uploads left in OSS / OSS 中未完成的分片上传: {pending}");
    let all_verified = files.iter().zip(&uploaded).all(|(file, (_, crc))| {
        clouds
            .oss
            .object(OSS_BUCKET, &format!("iotdb-backup/{}", file.key))
            .is_some_and(|object| object.crc64 == *crc)
    });
    anyhow::ensure!(
        all_verified,
        "some objects did not reach OSS intact / 部分对象未能完整到达 OSS"
    );
    println!("Every object verified byte for byte / 所有对象均已逐字节校验.");

    let backup = run_pull_step(&clouds).await?;
    let (rds, export) = run_export_step(&clouds).await?;
    run_status_step(&clouds, &backup, &export).await?;
    drop(rds);

    println!();
    println!("Messages the WeCom group robot received / 企业微信群机器人收到的消息:");
    println!("{}", clouds.wecom.render_text());
    println!("Done / 完成.");
    Ok(())
}

/// Lists a generated Aliyun physical backup on the fake RDS API, validates it and pulls it from
/// the fake OSS download URL into S3 through `aliyun-backup-pull` in the runtime loop.
async fn run_pull_step(clouds: &LocalClouds) -> anyhow::Result<SeededBackup> {
    println!();
    println!(
        "[5/7] Aliyun RDS backup pull / 阿里云 RDS 备份集拉取 (fake RDS API, fake OSS download)"
    );
    let backup = clouds
        .seed_aliyun_backup(256 * MIB as u64 + 4321, 77)
        .await?;
    println!(
        "      backup / 备份集 {} of {}: {} ({} bytes, CRC-64 {})",
        backup.backup_id, backup.instance_id, backup.file_name, backup.size, backup.crc64
    );
    let mut env = clouds.pull_env(&backup);
    env.retain(|(name, _)| name != "PULL_PART_SIZE_MIB" && name != "PULL_CONCURRENCY");
    env.push(("PULL_PART_SIZE_MIB".into(), "16".into()));
    env.push(("PULL_CONCURRENCY".into(), "4".into()));
    let binary = std::env::current_exe()?.with_file_name("aliyun-backup-pull");
    let events = testkit::paths::workspace_root()?.join("events");
    let pull = LambdaWatch::start(&binary, &env)?;
    let pulled = pull.invoke(&events.join("aliyun-backup-pull-schedule.json"))?;
    anyhow::ensure!(
        pulled.succeeded,
        "aliyun-backup-pull failed: {}\n{}",
        pulled.output,
        pull.log()
    );
    drop(pull);
    for entry in json_of(&pulled.output)["backups"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let bytes = entry["bytes"].as_u64().unwrap_or(0);
        let seconds = entry["seconds"].as_f64().unwrap_or(0.0);
        let throughput = if seconds > 0.0 {
            bytes as f64 / (1024.0 * 1024.0) / seconds
        } else {
            0.0
        };
        println!(
            "      {} → s3://{}/{}",
            entry["outcome"].as_str().unwrap_or("-"),
            clouds.bucket,
            entry["key"].as_str().unwrap_or("-")
        );
        println!(
            "      bytes/字节 {bytes}, parts/分片 {}, CRC-64 {}, {seconds:.1} s, {throughput:.0} MiB/s",
            entry["parts"],
            entry["crc64"].as_str().unwrap_or("-"),
        );
    }
    let head = testkit::aws::s3_client()
        .head_object()
        .bucket(&clouds.bucket)
        .key(&backup.expected_key)
        .send()
        .await?;
    let stored_crc = head
        .metadata()
        .and_then(|metadata| metadata.get("crc64ecma").cloned())
        .unwrap_or_default();
    let verified =
        head.content_length() == Some(backup.size as i64) && stored_crc == backup.crc64.to_string();
    println!(
        "      in S3 with matching size and CRC-64 / S3 中大小与 CRC-64 一致: {}",
        if verified { "yes / 是" } else { "NO / 否" }
    );
    anyhow::ensure!(
        verified,
        "the pulled backup does not match / 拉取的备份集不一致"
    );
    Ok(backup)
}

/// Exports two Amazon RDS snapshots through `rds-export-start` and follows them with
/// `rds-export-poll`: one completes and is reconciled into OSS, the other fails and is alerted.
async fn run_export_step(clouds: &LocalClouds) -> anyhow::Result<(FakeRdsExport, ExportDemo)> {
    println!();
    println!("[6/7] Amazon RDS snapshot exports / Amazon RDS snapshot 导出 (scripted RDS API)");
    let rds = FakeRdsExport::start().await?;
    let demo = prepare_export_demo(clouds, &rds).await?;
    let robot = clouds.wecom.base_url();
    let start_env = with_wecom(demo.start_env.clone(), &robot, WECOM_KEY);
    let poll_env = with_wecom(demo.poll_env.clone(), &robot, WECOM_KEY);
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the demo binary has no folder")?
        .to_path_buf();
    let events = testkit::paths::workspace_root()?.join("events");

    let start = LambdaWatch::start(&bin_dir.join("rds-export-start"), &start_env)?;
    let started = start.invoke(&events.join("rds-export-start-schedule.json"))?;
    anyhow::ensure!(
        started.succeeded,
        "rds-export-start failed: {}\n{}",
        started.output,
        start.log()
    );
    drop(start);
    for source in json_of(&started.output)["sources"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "      export start / 发起导出: {} → {} ({})",
            source["snapshot_id"].as_str().unwrap_or("-"),
            source["task_id"].as_str().unwrap_or("-"),
            source["outcome"].as_str().unwrap_or("-"),
        );
    }

    let poll = LambdaWatch::start(&bin_dir.join("rds-export-poll"), &poll_env)?;
    for round in 1..=2 {
        let polled = poll.invoke(&events.join("rds-export-poll-schedule.json"))?;
        anyhow::ensure!(
            polled.succeeded,
            "rds-export-poll failed: {}\n{}",
            polled.output,
            poll.log()
        );
        for transition in json_of(&polled.output)["transitions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "      poll {round} / 第 {round} 次轮询: {} → {}",
                transition["task_id"].as_str().unwrap_or("-"),
                transition["state"].as_str().unwrap_or("-"),
            );
        }
    }
    drop(poll);

    let synced = demo.exported_keys.iter().all(|key| {
        clouds
            .oss
            .object(OSS_BUCKET, &format!("iotdb-backup/{key}"))
            .is_some()
    });
    println!(
        "      export {} files in OSS / 导出文件已到达 OSS: {}",
        demo.completing_task_id,
        if synced { "yes / 是" } else { "NO / 否" }
    );
    anyhow::ensure!(
        synced,
        "the completed export did not reach OSS / 完成的导出未到达 OSS"
    );
    Ok((rds, demo))
}

/// Starts the API's router on 127.0.0.1 (`api-local`) over the demo's clouds and prints
/// `GET /status`: the page an on-call person opens.
async fn run_status_step(
    clouds: &LocalClouds,
    backup: &SeededBackup,
    export: &ExportDemo,
) -> anyhow::Result<()> {
    println!();
    println!("[7/7] The API's status page / API 状态页 (GET /status)");
    let mut env = clouds.sync_env();
    env.extend(export.start_env.clone());
    env.extend(export.poll_env.clone());
    // Last, so that the fake RDS API's AccessKey pair wins: /status reads RDS and S3, not OSS.
    env.extend(clouds.pull_env(backup));
    env.push(("PULL_FUNCTION_NAME".into(), "aliyun-backup-pull".into()));

    let binary = std::env::current_exe()?.with_file_name("api-local");
    let api = ApiLocal::start(&binary, &env)?;
    let status: Value = reqwest::get(format!("{}/status", api.url))
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!("      {} /status", api.url);

    let yes_no = |value: &Value| {
        if value.as_bool() == Some(true) {
            "yes / 是"
        } else {
            "no / 否"
        }
    };
    let hours = |value: &Value| {
        value.as_i64().map_or("-".to_string(), |seconds| {
            format!("{:.1} h", seconds as f64 / 3600.0)
        })
    };
    for source in status["aliyun"].as_array().into_iter().flatten() {
        println!(
            "      Aliyun / 阿里云 {}: backup / 备份集 {}, age / 时长 {} of max / 上限 {}, in S3 / 已到 S3: {}",
            source["instance_id"].as_str().unwrap_or("-"),
            source["backup_id"].as_str().unwrap_or("-"),
            hours(&source["age_seconds"]),
            hours(&source["max_age_seconds"]),
            yes_no(&source["in_s3"]),
        );
    }
    for source in status["rds"].as_array().into_iter().flatten() {
        println!(
            "      Amazon RDS {}: snapshot / 快照 {}, export / 导出 {} {}, in OSS / 已到 OSS: {}",
            source["source"].as_str().unwrap_or("-"),
            source["snapshot_id"].as_str().unwrap_or("-"),
            source["export_task_id"].as_str().unwrap_or("-"),
            source["export_status"].as_str().unwrap_or("-"),
            yes_no(&source["in_oss"]),
        );
    }
    println!("      healthy / 全部正常: {}", yes_no(&status["healthy"]));
    Ok(())
}

/// Parses the JSON object in `cargo lambda invoke` output.
fn json_of(output: &str) -> Value {
    let start = output.find('{').unwrap_or(0);
    serde_json::from_str(&output[start..]).unwrap_or(Value::Null)
}

/// Reads the outcome of the first record from `cargo lambda invoke` output.
fn outcome_of(output: &str) -> String {
    let start = output.find('{').unwrap_or(0);
    serde_json::from_str::<Value>(&output[start..])
        .ok()
        .and_then(|value| value["records"][0]["outcome"].as_str().map(str::to_string))
        .with_context(|| format!("unexpected invoke output: {output}"))
        .unwrap_or_else(|error| format!("error: {error}"))
}
