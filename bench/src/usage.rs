//! CPU time and peak memory from the kernel: `getrusage` for this process and `wait4` for a
//! child, so a peer such as rclone is measured the same way as `bench-copy`.
//!
//! Peak memory is `VmHWM` from `/proc/<pid>/status`, not `ru_maxrss`. Linux carries `ru_maxrss`
//! across `exec` from the address space that the new program replaced, and a child spawned by
//! the harness starts in the harness's address space, so its `ru_maxrss` is never below the
//! harness's own peak. `VmHWM` belongs to the program's own address space.

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

/// Returns the peak resident set size of process `pid` in KiB, the `VmHWM` line of its
/// `/proc/<pid>/status`, or `None` once the process has exited.
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Returns the usage of the calling process so far, with its peak from `VmHWM`.
pub fn own_usage() -> io::Result<Usage> {
    // SAFETY: `rusage` is plain data, and getrusage fills it completely on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the duration of the call.
    let status = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if status != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut own = Usage::from_rusage(&usage);
    own.max_rss_kib = peak_rss_kib("self").unwrap_or(own.max_rss_kib);
    Ok(own)
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
///
/// The peak memory is the last `VmHWM` read before the child exits, sampled every 10 ms, so
/// growth in the child's last 10 ms can be missed.
pub fn wait_with_usage(child: &Child, started: Instant) -> io::Result<Finished> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("child process id does not fit pid_t"))?;
    let sampler = {
        let pid = pid.to_string();
        std::thread::spawn(move || {
            let mut peak = None;
            // A zombie's status has no VmHWM line, so the loop ends when the child exits.
            while let Some(sample) = peak_rss_kib(&pid) {
                peak = Some(sample);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
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
    let elapsed = started.elapsed();
    let mut usage = Usage::from_rusage(&usage);
    if let Ok(Some(peak)) = sampler.join() {
        usage.max_rss_kib = peak;
    }
    Ok(Finished {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        raw_status: status,
        usage,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // `wait_with_usage` reaps the child with wait4, which clippy cannot see.
    #[allow(clippy::zombie_processes)]
    #[test]
    fn child_peak_excludes_the_parents_memory() {
        // 200 MiB touched in this process, which `ru_maxrss` would pass on to the child.
        let ballast = vec![1u8; 200 * 1024 * 1024];
        let started = Instant::now();
        let child = std::process::Command::new("sleep")
            .arg("0.3")
            .spawn()
            .unwrap();
        let finished = wait_with_usage(&child, started).unwrap();

        assert!(finished.success);
        assert!(finished.usage.max_rss_kib > 0);
        assert!(
            finished.usage.max_rss_kib < 50 * 1024,
            "sleep's peak was {} KiB",
            finished.usage.max_rss_kib
        );
        assert_eq!(
            ballast.iter().map(|&byte| u64::from(byte)).sum::<u64>(),
            200 * 1024 * 1024
        );
    }

    #[test]
    fn own_peak_counts_touched_memory() {
        // Opaque to the optimizer, which in a release build would otherwise drop the writes.
        let ballast = std::hint::black_box(vec![1u8; 64 * 1024 * 1024]);
        let usage = own_usage().unwrap();

        assert!(usage.max_rss_kib >= 64 * 1024, "{} KiB", usage.max_rss_kib);
        assert_eq!(ballast.len(), 64 * 1024 * 1024);
    }
}
