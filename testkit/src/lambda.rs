//! The real Lambda runtime loop for tests and `make demo`: `cargo lambda watch` serves the Lambda
//! Runtime API, a function binary runs its `lambda_runtime` loop against it, and
//! `cargo lambda invoke` sends it an event file.
//!
//! The binary is the one the caller already built (`CARGO_BIN_EXE_<name>` in a function crate's
//! tests), started with `--only-lambda-apis`. Letting `cargo lambda watch` build it instead would
//! run `cargo run -p <function>`, whose feature set differs from the workspace build and so
//! compiles every AWS SDK crate a second time.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::paths;

/// A function binary running its runtime loop against `cargo lambda watch` on 127.0.0.1.
pub struct LambdaWatch {
    watch: Child,
    function: Child,
    port: u16,
    log_path: PathBuf,
}

/// The output of `cargo lambda invoke`, and whether the function returned an error.
#[derive(Debug)]
pub struct Invocation {
    pub succeeded: bool,
    pub output: String,
}

/// The function name that `cargo lambda watch --only-lambda-apis` serves.
const FUNCTION_NAME: &str = "_";

impl LambdaWatch {
    /// Starts the Runtime API emulator, then `binary` with `env` added to its environment, and
    /// waits until the emulator accepts connections.
    pub fn start(binary: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            binary.exists(),
            "function binary {} is missing; build it with `cargo build --workspace --bins`",
            binary.display()
        );
        let cargo_lambda = paths::venv_bin("cargo-lambda")?;
        let port = crate::free_port()?;
        let name = binary
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log_path = std::env::temp_dir().join(format!("lambda-runtime-{name}-{port}.log"));
        let log = std::fs::File::create(&log_path)?;

        let watch = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            // The emulator's deadline for each invocation, as a function's Timeout would set it.
            .args(["--timeout", "900"])
            .current_dir(paths::workspace_root()?)
            .env("PATH", paths::path_with_venv()?)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .process_group(0)
            .spawn()
            .context(
                "failed to start `cargo lambda watch`; run `make setup` to install cargo-lambda",
            )?;
        let mut guard = ChildGuard(Some(watch));
        wait_until_listening(port, Duration::from_secs(60), &log_path)?;

        let function = Command::new(binary)
            .envs(
                env.iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;

        Ok(Self {
            watch: guard
                .0
                .take()
                .expect("the guard contains the watch process"),
            function,
            port,
            log_path,
        })
    }

    /// Sends the event in `data_file` through `cargo lambda invoke` and waits for the reply.
    pub fn invoke(&self, data_file: &Path) -> anyhow::Result<Invocation> {
        let output = Command::new(paths::venv_bin("cargo-lambda")?)
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args([
                "--invoke-port",
                &self.port.to_string(),
                "--output-format",
                "json",
            ])
            .arg("--data-file")
            .arg(data_file)
            .arg(FUNCTION_NAME)
            .env("PATH", paths::path_with_venv()?)
            .output()
            .context("failed to run `cargo lambda invoke`")?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok(Invocation {
            succeeded: output.status.success(),
            output: text,
        })
    }

    /// Returns what the emulator and the function have logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

fn wait_until_listening(port: u16, limit: Duration, log_path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "`cargo lambda watch` did not listen on 127.0.0.1:{port} within {limit:?}; its log:\n{}",
        std::fs::read_to_string(log_path).unwrap_or_default()
    )
}

/// Ends a process group when dropped, so a failed start leaves nothing running.
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            stop(child);
        }
    }
}

fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let _ = child.wait();
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        stop(&mut self.function);
        stop(&mut self.watch);
    }
}
