//! The moto launcher: one server per process, reuse of a named server, and no server left
//! behind when the test process dies. Each case runs this test binary again as a child process,
//! because the launcher keeps its state for the life of a process.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// Set in the child process so that its test body runs.
const CHILD_VAR: &str = "BACKUP_BRIDGE_LAUNCHER_CHILD";

/// Body of the child process: prints what the launcher did, then waits until stdin closes.
#[test]
#[ignore = "runs only as the child process of the other launcher tests"]
fn launcher_child_process() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let endpoint = testkit::moto::endpoint();
    let again = testkit::moto::endpoint();
    let pid = testkit::moto::server_pid().map_or_else(|| "none".to_owned(), |pid| pid.to_string());
    let mut stdout = std::io::stdout().lock();
    // libtest has printed "test launcher_child_process ... " without a line break.
    writeln!(stdout).unwrap();
    writeln!(stdout, "ENDPOINT={endpoint}").unwrap();
    writeln!(stdout, "SAME={}", endpoint == again).unwrap();
    writeln!(stdout, "PID={pid}").unwrap();
    stdout.flush().unwrap();
    drop(stdout);

    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Starts the child process with `stdin` and returns it with a reader over its stdout.
fn start_child(
    moto_url: Option<&str>,
    stdin: Stdio,
) -> (std::process::Child, BufReader<std::process::ChildStdout>) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "launcher_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, "1")
        .stdin(stdin)
        .stdout(Stdio::piped());
    match moto_url {
        Some(url) => command.env(testkit::moto::MOTO_URL_VAR, url),
        None => command.env_remove(testkit::moto::MOTO_URL_VAR),
    };
    let mut child = command.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdout)
}

/// Reads the child's stdout until it has printed `PID=`, and returns the `KEY=value` lines.
fn read_report(stdout: &mut BufReader<std::process::ChildStdout>) -> Vec<(String, String)> {
    let mut report = Vec::new();
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some((name, value)) = line.trim_end().split_once('=') {
            report.push((name.to_owned(), value.to_owned()));
            if name == "PID" {
                break;
            }
        }
        line.clear();
    }
    report
}

fn value<'a>(report: &'a [(String, String)], name: &str) -> &'a str {
    report
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("the child printed no {name}=: {report:?}"))
}

/// Waits up to `timeout_ms` for the process behind `pidfd` to exit; returns true when it did.
fn wait_for_exit(pidfd: i32, timeout_ms: i32) -> bool {
    let mut poll_fd = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll_fd is a valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, timeout_ms) };
    ready == 1 && poll_fd.revents & libc::POLLIN != 0
}

#[test]
fn spawned_moto_dies_with_test_process() {
    let (mut child, mut stdout) = start_child(None, Stdio::piped());
    let report = read_report(&mut stdout);

    let endpoint = value(&report, "ENDPOINT");
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(value(&report, "SAME"), "true", "one server per process");
    let address = endpoint.trim_start_matches("http://");
    assert!(
        TcpStream::connect(address).is_ok(),
        "moto listens at {address}"
    );

    let pid: i32 = value(&report, "PID")
        .parse()
        .expect("the child started moto");
    // A pidfd refers to this very process, so a recycled pid cannot fool the wait below.
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(
        pidfd >= 0,
        "moto (pid {pid}) is running: {}",
        std::io::Error::last_os_error()
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let exited = wait_for_exit(pidfd, 30_000);
    // SAFETY: pidfd is a descriptor this test opened and closes once.
    unsafe { libc::close(pidfd) };
    assert!(
        exited,
        "moto (pid {pid}) still runs 30 s after its test process was killed"
    );
}

#[test]
fn named_server_is_used_without_spawning() {
    let (mut child, mut stdout) = start_child(Some("http://127.0.0.1:9/"), Stdio::null());
    let report = read_report(&mut stdout);

    assert_eq!(value(&report, "ENDPOINT"), "http://127.0.0.1:9");
    assert_eq!(value(&report, "PID"), "none", "no moto was started");
    // Read the harness's closing lines too, so the child never writes into a closed pipe.
    std::io::copy(&mut stdout, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
}
