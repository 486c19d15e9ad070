//! Launcher for moto, the AWS stand-in that the S3 and Secrets Manager tests talk to.
//!
//! [`endpoint`] returns the URL of one moto server per test process. When the environment names
//! a running server (`BACKUP_BRIDGE_MOTO_URL`, set by the Makefile), that server is used;
//! otherwise `moto_server` from the project virtualenv is started on 127.0.0.1 and killed when
//! the test process exits.

use std::env;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Names the URL of a moto server that is already running, e.g. `http://127.0.0.1:5000`.
pub const MOTO_URL_VAR: &str = "BACKUP_BRIDGE_MOTO_URL";
/// Names the virtualenv that holds `moto_server`, when it is not `.venv` in the repository.
pub const VENV_VAR: &str = "BACKUP_BRIDGE_VENV";

/// moto 5.2.1 answers CompleteMultipartUpload with XML that aws-sdk-s3 rejects; 5.2.2 fixed it.
const MIN_MOTO_VERSION: (u32, u32, u32) = (5, 2, 2);
/// How long a fresh moto server may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// Returns the URL of the moto server for this test process, starting one on first use.
///
/// # Panics
/// When the virtualenv is missing, its moto is older than 5.2.2, or the server does not start
/// within a minute. The message names the command and what it printed.
pub fn endpoint() -> String {
    ENDPOINT.get_or_init(start_or_reuse).clone()
}

fn start_or_reuse() -> String {
    if let Ok(url) = env::var(MOTO_URL_VAR)
        && !url.trim().is_empty()
    {
        // NOTE: the version of an external server is not checked, because moto has no version
        // endpoint. The Makefile starts it from the same pinned virtualenv.
        return url.trim().trim_end_matches('/').to_owned();
    }
    let venv = find_venv();
    check_moto_version(&venv);
    launch(&venv)
}

/// Finds the virtualenv from `BACKUP_BRIDGE_VENV`, or the nearest folder above the crate that
/// contains `.venv`.
fn find_venv() -> PathBuf {
    if let Ok(path) = env::var(VENV_VAR)
        && !path.trim().is_empty()
    {
        let venv = PathBuf::from(path.trim());
        if venv.join("bin/moto_server").is_file() {
            return venv;
        }
        panic!(
            "{VENV_VAR}={} contains no bin/moto_server: run `make setup`",
            venv.display()
        );
    }
    let start = env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for folder in start.ancestors() {
        let venv = folder.join(".venv");
        if venv.join("bin/moto_server").is_file() {
            return venv;
        }
    }
    panic!(
        "no .venv with bin/moto_server found above {}: run `make setup`",
        start.display()
    );
}

/// Reads the installed moto version and panics when it is older than [`MIN_MOTO_VERSION`].
fn check_moto_version(venv: &Path) {
    let python = venv.join("bin/python");
    let output = Command::new(&python)
        .args(["-c", "import moto; print(moto.__version__)"])
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "failed to run {} to read the moto version: {error}",
                python.display()
            )
        });
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let version = parse_version(&text).unwrap_or_else(|| {
        panic!(
            "failed to read the moto version from {} (stdout {text:?}, stderr {:?}): run `make setup`",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
    });
    assert!(
        version >= MIN_MOTO_VERSION,
        "moto {text} in {} is older than 5.2.2, whose CompleteMultipartUpload reply aws-sdk-s3 \
         rejects: run `make setup` to install the pinned version",
        venv.display()
    );
}

/// Parses `major.minor.patch`, ignoring a suffix such as `.dev0`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut numbers = text.split('.').map(|part| part.parse::<u32>());
    let major = numbers.next()?.ok()?;
    let minor = numbers.next()?.ok()?;
    let patch = numbers.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor, patch))
}

/// Starts `moto_server` on a free loopback port and returns its URL once it listens.
fn launch(venv: &Path) -> String {
    let program = venv.join("bin/moto_server");
    let port = free_port();
    let command_line = format!("{} -H 127.0.0.1 -p {port}", program.display());
    let (lines_tx, lines_rx) = mpsc::channel::<StartupEvent>();

    // PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process.
    // Test threads come and go, so a dedicated thread spawns moto and then waits on it for
    // the rest of the process's life.
    let spawn_command = command_line.clone();
    thread::Builder::new()
        .name("moto-server".into())
        .spawn(move || {
            let child = match spawn_moto(&program, port) {
                Ok(child) => child,
                Err(error) => {
                    let _ = lines_tx.send(StartupEvent::SpawnFailed(error.to_string()));
                    return;
                }
            };
            watch_child(child, lines_tx, &spawn_command);
        })
        .unwrap_or_else(|error| panic!("failed to start the thread that runs moto: {error}"));

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut printed = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(remaining) {
            Ok(StartupEvent::Line(line)) => {
                let ready = line.contains("Running on");
                printed.push(line);
                if ready {
                    return format!("http://127.0.0.1:{port}");
                }
            }
            Ok(StartupEvent::SpawnFailed(error)) => {
                panic!("failed to run `{command_line}`: {error}: run `make setup`")
            }
            Ok(StartupEvent::Exited(status)) => panic!(
                "`{command_line}` exited with {status} before it listened; it printed:\n{}",
                printed.join("\n")
            ),
            Err(_) => panic!(
                "`{command_line}` did not listen within {}s; it printed:\n{}",
                STARTUP_TIMEOUT.as_secs(),
                printed.join("\n")
            ),
        }
    }
}

enum StartupEvent {
    Line(String),
    SpawnFailed(String),
    Exited(String),
}

fn spawn_moto(program: &Path, port: u16) -> std::io::Result<Child> {
    let parent = std::process::id();
    let mut command = Command::new(program);
    command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect; then nobody would kill moto.
            if libc::getppid() as u32 != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Forwards moto's startup output, keeps draining its request log so the pipe never fills, and
/// waits on the child so that this thread (its death-signal parent) lives as long as moto.
fn watch_child(mut child: Child, lines_tx: mpsc::Sender<StartupEvent>, command_line: &str) {
    if let Some(stderr) = child.stderr.take() {
        let drain_tx = lines_tx.clone();
        let spawned = thread::Builder::new()
            .name("moto-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // After startup nobody listens; the request log is dropped.
                    let _ = drain_tx.send(StartupEvent::Line(line));
                }
            });
        if let Err(error) = spawned {
            let _ = lines_tx.send(StartupEvent::SpawnFailed(format!(
                "failed to start the thread that reads the output of `{command_line}`: {error}"
            )));
        }
    }
    let status = match child.wait() {
        Ok(status) => status.to_string(),
        Err(error) => format!("an unknown status ({error})"),
    };
    let _ = lines_tx.send(StartupEvent::Exited(status));
}

/// Picks a port that is free now. Another process could take it before moto binds, in which
/// case moto exits and [`launch`] reports what it printed.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|error| panic!("failed to bind 127.0.0.1:0 to find a free port: {error}"));
    listener
        .local_addr()
        .unwrap_or_else(|error| panic!("failed to read the address of a bound socket: {error}"))
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_version_reads_release_and_dev_versions() {
        assert_eq!(parse_version("5.2.5"), Some((5, 2, 5)));
        assert_eq!(parse_version("5.2.2.dev0"), Some((5, 2, 2)));
        assert_eq!(parse_version("6.0"), Some((6, 0, 0)));
        assert_eq!(parse_version("unknown"), None);
    }

    #[test]
    fn older_versions_compare_below_the_minimum() {
        assert!((5, 2, 1) < MIN_MOTO_VERSION);
        assert!((5, 2, 5) >= MIN_MOTO_VERSION);
        assert!((6, 0, 0) >= MIN_MOTO_VERSION);
    }
}
