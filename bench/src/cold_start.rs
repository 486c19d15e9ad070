//! Cold start: the time from exec of a function's release `bootstrap` to its first
//! `GET /2018-06-01/runtime/invocation/next` against a minimal Runtime API stub on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
/// How long one start may take before it counts as never reaching `next`.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The cold-start figures of one function.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub function: String,
    pub bootstrap_bytes: u64,
    /// Milliseconds to the first `next` for each start that reached it.
    pub millis: Vec<f64>,
    /// Reasons of the starts that did not reach `next`, such as "exited with status 0"; empty
    /// when all did.
    pub failures: Vec<String>,
}

/// Lists the function packages: every directory under `functions/` with a Cargo.toml.
pub fn discover_functions(workspace: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(workspace.join("functions")).context("failed to list functions/")?
    {
        let entry = entry?;
        if entry.path().join("Cargo.toml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Starts `binary` `runs` times and times each start to its first `next` request.
pub fn measure(
    function: &str,
    binary: &Path,
    env: &[(String, String)],
    runs: usize,
) -> anyhow::Result<ColdStart> {
    let bootstrap_bytes = std::fs::metadata(binary)
        .with_context(|| {
            format!(
                "missing release binary {}; build it with cargo build --release -p {function}",
                binary.display()
            )
        })?
        .len();
    let stub = RuntimeStub::start()?;
    let mut result = ColdStart {
        function: function.to_string(),
        bootstrap_bytes,
        millis: Vec::new(),
        failures: Vec::new(),
    };
    for _ in 0..runs {
        match stub.time_one_start(binary, env)? {
            Ok(elapsed) => result.millis.push(elapsed.as_secs_f64() * 1000.0),
            Err(reason) => result.failures.push(reason),
        }
    }
    Ok(result)
}

/// A Runtime API stub that records when a `next` request arrives and never replies to it.
struct RuntimeStub {
    address: String,
    arrivals: mpsc::Receiver<Instant>,
}

impl RuntimeStub {
    fn start() -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("failed to bind the Runtime API stub")?;
        let address = listener.local_addr()?.to_string();
        let (sender, arrivals) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sender = sender.clone();
                std::thread::spawn(move || report_next(stream, &sender));
            }
        });
        Ok(Self { address, arrivals })
    }

    /// Runs the bootstrap once. The outer error is a harness failure; the inner one is the
    /// reason this start never requested an invocation.
    fn time_one_start(
        &self,
        binary: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Result<Duration, String>> {
        while self.arrivals.try_recv().is_ok() {}
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env_clear()
            .envs(
                env.iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        let outcome = wait_for_next(&self.arrivals, &mut child, started);
        // Only this child, by its own handle.
        let _ = child.kill();
        let _ = child.wait();
        Ok(outcome)
    }
}

fn wait_for_next(
    arrivals: &mpsc::Receiver<Instant>,
    child: &mut Child,
    started: Instant,
) -> Result<Duration, String> {
    loop {
        match arrivals.recv_timeout(Duration::from_millis(5)) {
            Ok(arrived) => return Ok(arrived.duration_since(started)),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("the stub stopped".to_string()),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            // A request may have landed just before the exit.
            return arrivals
                .try_recv()
                .map(|arrived| arrived.duration_since(started))
                .map_err(|_| format!("exited with {status} before requesting an invocation"));
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("no next request within {START_TIMEOUT:?}"));
        }
    }
}

/// Reads one request head and reports the arrival time when it is `GET …/invocation/next`.
/// The connection stays open without a reply until the process is killed.
fn report_next(stream: TcpStream, sender: &mpsc::Sender<Instant>) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_ok() {
        let arrived = Instant::now();
        if line.starts_with("GET ") && line.contains(NEXT_PATH) {
            let _ = sender.send(arrived);
        }
    }
    // Hold the connection until the client closes it.
    let mut rest = String::new();
    while reader.read_line(&mut rest).is_ok_and(|read| read > 0) {
        rest.clear();
    }
}

/// Returns the release binary of `function` under `target_dir`.
pub fn release_binary(target_dir: &Path, function: &str) -> PathBuf {
    target_dir.join("release").join(function)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Writes an executable shell script to stand in for a bootstrap.
    fn script(folder: &Path, name: &str, body: &str) -> PathBuf {
        let path = folder.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script is written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("script is executable");
        path
    }

    #[test]
    fn measure_times_each_next_request() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let bootstrap = script(
            folder.path(),
            "asks-for-next",
            "exec /usr/bin/curl --silent --max-time 5 \"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next\"",
        );
        let result = measure("asks-for-next", &bootstrap, &[], 3).expect("measurement runs");
        assert_eq!(result.millis.len(), 3, "failures: {:?}", result.failures);
        assert!(result.failures.is_empty());
        assert!(result.millis.iter().all(|millis| *millis > 0.0));
        assert!(result.bootstrap_bytes > 0);
    }

    #[test]
    fn measure_reports_exit_without_next() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let bootstrap = script(folder.path(), "exits-at-once", "exit 0");
        let result = measure("exits-at-once", &bootstrap, &[], 2).expect("measurement runs");
        assert!(result.millis.is_empty());
        assert_eq!(result.failures.len(), 2);
        assert!(
            result.failures[0].contains("before requesting an invocation"),
            "{:?}",
            result.failures
        );
    }

    #[test]
    fn measure_ignores_other_runtime_requests() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let bootstrap = script(
            folder.path(),
            "reports-init-error",
            "exec /usr/bin/curl --silent --max-time 0.5 -X POST \"http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error\"",
        );
        let result = measure("reports-init-error", &bootstrap, &[], 1).expect("measurement runs");
        assert!(
            result.millis.is_empty(),
            "a POST to init/error is not a next request"
        );
        assert_eq!(result.failures.len(), 1);
    }
}
