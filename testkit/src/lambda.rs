//! The real Lambda runtime loop for tests and `make demo`: `cargo lambda watch` runs a function
//! binary against its Runtime API emulator, and `cargo lambda invoke` sends it an event file.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::paths;

/// A `cargo lambda watch` process serving one function package on 127.0.0.1.
pub struct LambdaWatch {
    child: Child,
    port: u16,
    package: String,
    log_path: PathBuf,
    _env_file: tempfile::NamedTempFile,
}

/// What `cargo lambda invoke` printed, and whether the function returned an error.
#[derive(Debug)]
pub struct Invocation {
    pub succeeded: bool,
    pub output: String,
}

impl LambdaWatch {
    /// Starts `cargo lambda watch` for `package` with `env` as the function's environment, and
    /// waits until its invoke port accepts connections.
    pub fn start(package: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
        let cargo_lambda = paths::venv_bin("cargo-lambda")?;
        let port = crate::free_port()?;

        let mut env_file = tempfile::NamedTempFile::new()?;
        for (name, value) in env {
            anyhow::ensure!(
                !value.contains('\n'),
                "environment value of {name} has a newline"
            );
            writeln!(env_file, "{name}={value}")?;
        }
        env_file.flush()?;

        let log_path =
            std::env::temp_dir().join(format!("cargo-lambda-watch-{package}-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--quiet",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string(), "--package", package])
            .arg("--env-file")
            .arg(env_file.path())
            .current_dir(paths::workspace_root()?)
            .env("PATH", paths::path_with_venv()?)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context(
                "failed to start `cargo lambda watch`; run `make setup` to install cargo-lambda",
            )?;

        let watch = Self {
            child,
            port,
            package: package.to_string(),
            log_path,
            _env_file: env_file,
        };
        watch.wait_until_listening(Duration::from_secs(120))?;
        Ok(watch)
    }

    fn wait_until_listening(&self, limit: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "`cargo lambda watch` did not listen on 127.0.0.1:{} within {limit:?}; its log:\n{}",
            self.port,
            self.log()
        )
    }

    /// Sends the event in `data_file` to the function through `cargo lambda invoke`. The first
    /// invocation also waits for the function to compile.
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
            .arg(&self.package)
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

    /// Returns what the watch process and the function have logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LambdaWatch {
    fn drop(&mut self) {
        // The watch process starts cargo and the function; ending its process group ends them all.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}
