//! Runs the `api-local` binary (the API's router over plain HTTP on 127.0.0.1) for `make demo`,
//! and stops it when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// A running `api-local` process.
pub struct ApiLocal {
    child: Child,
    /// The base URL, such as `http://127.0.0.1:41234`.
    pub url: String,
}

impl ApiLocal {
    /// Starts `binary` with `env` added to its environment and waits for the line
    /// `listening on <url>` that it prints once the port is bound.
    ///
    /// # Errors
    /// When the binary cannot start or ends before printing its address.
    pub fn start(binary: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .envs(
                env.iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            )
            .env("API_PORT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        let stdout = child.stdout.take().context("api-local has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("api-local ended without printing its address: {line:?}");
        };
        Ok(Self {
            url: url.to_string(),
            child,
        })
    }
}

impl Drop for ApiLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
