//! The processes a chaos run signals, found so that only its own are ever touched: the
//! control plane it started, that control plane's worker children, and its own emulator.

use anyhow::{Result, anyhow, bail};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running control plane; stopped (SIGTERM, then SIGKILL) if dropped while running.
pub(crate) struct ControlPlane {
    pub(crate) child: Child,
}

impl ControlPlane {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SIGTERM lets it stop its workers first.
            signal(self.child.id(), "-TERM");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The emulator frozen with SIGSTOP; SIGCONT when dropped, whatever happens meanwhile.
pub(crate) struct Frozen(u32);

impl Frozen {
    pub(crate) fn new(pid: u32) -> Result<Frozen> {
        if !signal(pid, "-STOP") {
            bail!("could not SIGSTOP the emulator (pid {pid})");
        }
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

/// `kill SIG pid`; whether it was delivered.
pub(crate) fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `(ppid, comm, state)` of a process, from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(u32, String, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, comm, state))
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Live worker processes started by the control plane `parent`: only its own children, so
/// nothing else on the machine (other tests' workers) is ever signalled.
pub(crate) fn worker_pids(parent: u32) -> Vec<u32> {
    let mut found: Vec<u32> = pids()
        .into_iter()
        .filter(|pid| {
            proc_stat(*pid).is_some_and(|(ppid, comm, state)| {
                // The kernel cuts comm to 15 bytes: "custodian-worke".
                ppid == parent && comm.starts_with("custodian-worke") && state != 'Z'
            })
        })
        .collect();
    found.sort_unstable();
    found
}

/// Where a process's stderr goes: for a task, its log file under `--task-logs`.
pub(crate) fn stderr_of(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/2")).ok()
}

pub(crate) fn alive_worker(pid: u32) -> bool {
    proc_stat(pid)
        .is_some_and(|(_, comm, state)| comm.starts_with("custodian-worke") && state != 'Z')
}

/// The moto server behind `endpoint`: a child of this process (the harness started it)
/// listening on the endpoint's port.
pub(crate) fn emulator_pid(endpoint: &str) -> Result<u32> {
    let port = endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .ok_or_else(|| anyhow!("no port in the emulator endpoint {endpoint}"))?;
    let me = std::process::id();
    pids()
        .into_iter()
        .find(|pid| {
            let child = proc_stat(*pid).is_some_and(|(ppid, _, _)| ppid == me);
            let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = args.split(|b| *b == 0).collect();
            let port = port.to_string();
            child
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--port" && w[1] == port.as_bytes())
        })
        .ok_or_else(|| {
            anyhow!("no emulator process of ours listens on port {port} (is {endpoint} moto started by this process?)")
        })
}
