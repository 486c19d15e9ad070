//! CPU time and peak memory from the kernel: `getrusage` for this process and `wait4` for a
//! child, so a peer such as rclone is measured the same way as `bench-copy`.

use std::io;
use std::process::Child;
use std::time::{Duration, Instant};

/// Resource usage of one finished process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    /// Peak resident set size in KiB (Linux reports `ru_maxrss` in KiB).
    pub max_rss_kib: u64,
}

impl Usage {
    pub fn cpu_seconds(&self) -> f64 {
        self.user_cpu_seconds + self.system_cpu_seconds
    }

    fn from_rusage(usage: &libc::rusage) -> Self {
        let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
        Self {
            user_cpu_seconds: seconds(usage.ru_utime),
            system_cpu_seconds: seconds(usage.ru_stime),
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        }
    }
}

/// Returns the usage of the calling process so far.
pub fn own_usage() -> io::Result<Usage> {
    // SAFETY: `rusage` is plain data, and getrusage fills it completely on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the duration of the call.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Usage::from_rusage(&usage))
}

/// The exit status and resource usage of a reaped child process.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    /// True when the child exited with status 0.
    pub success: bool,
    /// The exit status as `wait4` returned it, for error messages.
    pub raw_status: i32,
    pub usage: Usage,
    /// Time from `started` to the moment `wait4` returned.
    pub elapsed: Duration,
}

/// Waits for `child` with `wait4`, which reaps it and returns its own resource usage.
///
/// Blocks the calling thread, so async callers run it on a blocking thread. After this call
/// the `Child` must not be waited for again, because its process id is already reaped.
pub fn wait_with_usage(child: &Child, started: Instant) -> io::Result<Finished> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("child process id does not fit pid_t"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data, and wait4 fills it completely on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are valid for the duration of the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(Finished {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        raw_status: status,
        usage: Usage::from_rusage(&usage),
        elapsed: started.elapsed(),
    })
}
