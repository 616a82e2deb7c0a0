//! How tasks run: as local processes (a worker binary or any stand-in) or as Docker
//! containers from the worker image. The scheduler only sees the [`TaskLauncher`] trait, so
//! its decisions are tested with a fake and the two real launchers stay thin.
//!
//! Every call is non-blocking: `start` spawns, `reap` polls for exits, `terminate` sends
//! SIGTERM and `kill` SIGKILL. The scheduler owns the stop timeout between the last two.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use tokio::process::{Child, Command};

/// What one task is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// 32 hex digits, like an ECS task id.
    pub id: String,
    pub arn: String,
    /// Per-task environment (ECS_AGENT_URI, …), added to the launcher's own.
    pub env: Vec<(String, String)>,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskExit {
    Code(i32),
    Signal(i32),
}

impl TaskExit {
    fn from_status(s: ExitStatus) -> Self {
        match (s.code(), s.signal()) {
            (Some(c), _) => TaskExit::Code(c),
            (None, Some(sig)) => TaskExit::Signal(sig),
            (None, None) => TaskExit::Code(-1),
        }
    }
}

impl std::fmt::Display for TaskExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskExit::Code(c) => write!(f, "exit code {c}"),
            TaskExit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("task {0} is not running")]
    NotRunning(String),
    #[error("signalling task {id}: {message}")]
    Signal { id: String, message: String },
    #[error("task log {path}: {source}")]
    Log {
        path: String,
        source: std::io::Error,
    },
}

/// Starts and stops tasks. Implementations keep their own handles by task id.
pub trait TaskLauncher: Send {
    fn start(&mut self, spec: &TaskSpec) -> Result<(), LaunchError>;
    /// Tasks that have exited since the last call.
    fn reap(&mut self) -> Vec<(String, TaskExit)>;
    /// Asks a task to stop (SIGTERM).
    fn terminate(&mut self, id: &str) -> Result<(), LaunchError>;
    /// Stops a task at once (SIGKILL).
    fn kill(&mut self, id: &str) -> Result<(), LaunchError>;
    /// A short description for logs: the binary or image used.
    fn describe(&self) -> String;
}

fn outputs(log_dir: Option<&Path>, id: &str) -> Result<(Stdio, Stdio), LaunchError> {
    match log_dir {
        None => Ok((Stdio::null(), Stdio::null())),
        Some(dir) => {
            let path = dir.join(format!("{id}.log"));
            let err = |source| LaunchError::Log {
                path: path.display().to_string(),
                source,
            };
            let file = std::fs::File::create(&path).map_err(err)?;
            let file2 = file.try_clone().map_err(err)?;
            Ok((Stdio::from(file), Stdio::from(file2)))
        }
    }
}

fn reap_children<T>(children: &mut HashMap<String, (Child, T)>) -> Vec<(String, TaskExit)> {
    let mut done = Vec::new();
    children.retain(|id, (child, _)| match child.try_wait() {
        Ok(Some(status)) => {
            done.push((id.clone(), TaskExit::from_status(status)));
            false
        }
        Ok(None) => true,
        Err(e) => {
            tracing::warn!(task = %id, error = %e, "could not poll task; treating it as gone");
            done.push((id.clone(), TaskExit::Code(-1)));
            false
        }
    });
    done.sort();
    done
}

/// Tasks as local processes: one child per task, sharing the launcher's environment.
#[derive(Debug)]
pub struct ProcessLauncher {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log_dir: Option<PathBuf>,
    children: HashMap<String, (Child, ())>,
}

impl ProcessLauncher {
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>, env: Vec<(String, String)>) -> Self {
        ProcessLauncher {
            program: program.into(),
            args,
            env,
            log_dir: None,
            children: HashMap::new(),
        }
    }

    /// Writes each task's stdout and stderr to `<dir>/<task-id>.log` (default: discarded).
    pub fn with_log_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.log_dir = dir;
        self
    }
}

impl TaskLauncher for ProcessLauncher {
    fn start(&mut self, spec: &TaskSpec) -> Result<(), LaunchError> {
        let (out, err) = outputs(self.log_dir.as_deref(), &spec.id)?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A control plane that dies must not leave workers behind.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: self.program.display().to_string(),
                source,
            })?;
        self.children.insert(spec.id.clone(), (child, ()));
        Ok(())
    }

    fn reap(&mut self) -> Vec<(String, TaskExit)> {
        reap_children(&mut self.children)
    }

    fn terminate(&mut self, id: &str) -> Result<(), LaunchError> {
        let (child, _) = self
            .children
            .get(id)
            .ok_or_else(|| LaunchError::NotRunning(id.to_owned()))?;
        let Some(pid) = child.id() else {
            return Ok(()); // already exited; `reap` reports it
        };
        let pid = i32::try_from(pid).map_err(|_| LaunchError::Signal {
            id: id.to_owned(),
            message: format!("pid {pid} out of range"),
        })?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| LaunchError::Signal {
            id: id.to_owned(),
            message: e.to_string(),
        })
    }

    fn kill(&mut self, id: &str) -> Result<(), LaunchError> {
        let (child, _) = self
            .children
            .get_mut(id)
            .ok_or_else(|| LaunchError::NotRunning(id.to_owned()))?;
        child.start_kill().map_err(|e| LaunchError::Signal {
            id: id.to_owned(),
            message: e.to_string(),
        })
    }

    fn describe(&self) -> String {
        format!("process {}", self.program.display())
    }
}

/// The label every task container carries, valued with the control plane's process id, so
/// that its containers can be found (`docker ps --filter label=czero.local=PID`) by a fault
/// injector or for clean-up, without touching anyone else's.
pub const CONTAINER_LABEL: &str = "czero.local";

/// Tasks as Docker containers: `docker run --rm --network host` of the worker image, so
/// the tasks reach the emulator and the agent endpoint on 127.0.0.1. The `docker run`
/// client stays attached; its exit is the container's.
#[derive(Debug)]
pub struct DockerLauncher {
    docker: PathBuf,
    image: String,
    env: Vec<(String, String)>,
    log_dir: Option<PathBuf>,
    /// Task id → (the attached `docker run`, container name).
    children: HashMap<String, (Child, String)>,
}

impl DockerLauncher {
    pub fn new(image: impl Into<String>, env: Vec<(String, String)>) -> Self {
        DockerLauncher {
            docker: PathBuf::from("docker"),
            image: image.into(),
            env,
            log_dir: None,
            children: HashMap::new(),
        }
    }

    /// Writes each task's output to `<dir>/<task-id>.log` (default: discarded).
    pub fn with_log_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.log_dir = dir;
        self
    }

    fn container(&self, id: &str) -> Result<String, LaunchError> {
        self.children
            .get(id)
            .map(|(_, name)| name.clone())
            .ok_or_else(|| LaunchError::NotRunning(id.to_owned()))
    }

    /// `docker kill` in the background; the runtime reaps it.
    fn docker_kill(&self, id: &str, signal: &str) -> Result<(), LaunchError> {
        let name = self.container(id)?;
        Command::new(&self.docker)
            .args(["kill", "--signal", signal, &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| LaunchError::Signal {
                id: id.to_owned(),
                message: format!("docker kill: {e}"),
            })
    }
}

impl TaskLauncher for DockerLauncher {
    fn start(&mut self, spec: &TaskSpec) -> Result<(), LaunchError> {
        let (out, err) = outputs(self.log_dir.as_deref(), &spec.id)?;
        let name = format!("czero-task-{}", spec.id);
        let mut cmd = Command::new(&self.docker);
        cmd.args([
            "run",
            "--rm",
            "--init",
            "--network",
            "host",
            "--name",
            &name,
            "--label",
            &format!("{CONTAINER_LABEL}={}", std::process::id()),
        ]);
        // `-e NAME` takes the value from the client's environment, so values never show
        // up in `ps`.
        for (k, v) in self.env.iter().chain(spec.env.iter()) {
            cmd.arg("-e").arg(k).env(k, v);
        }
        cmd.arg(&self.image);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                program: format!("{} run {}", self.docker.display(), self.image),
                source,
            })?;
        self.children.insert(spec.id.clone(), (child, name));
        Ok(())
    }

    fn reap(&mut self) -> Vec<(String, TaskExit)> {
        reap_children(&mut self.children)
            .into_iter()
            .map(|(id, exit)| (id, container_exit(exit)))
            .collect()
    }

    fn terminate(&mut self, id: &str) -> Result<(), LaunchError> {
        self.docker_kill(id, "TERM")
    }

    fn kill(&mut self, id: &str) -> Result<(), LaunchError> {
        self.docker_kill(id, "KILL")
    }

    fn describe(&self) -> String {
        format!("docker image {}", self.image)
    }
}

impl Drop for DockerLauncher {
    fn drop(&mut self) {
        // Containers outlive their `docker run` client: remove what is left.
        for (_, name) in self.children.values() {
            let _ = std::process::Command::new(&self.docker)
                .args(["kill", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `docker run` reports a container killed by signal N as exit code 128 + N; report it as the
/// signal, as a process task would be. 125..=127 are Docker's own errors and stay codes.
fn container_exit(exit: TaskExit) -> TaskExit {
    match exit {
        TaskExit::Code(c) if (129..=128 + 64).contains(&c) => TaskExit::Signal(c - 128),
        other => other,
    }
}

/// Whether Docker answers and has `image` locally (no pull is attempted).
pub async fn docker_image_available(image: &str) -> bool {
    let ok = |args: &[&str]| {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        async move { matches!(cmd.status().await, Ok(s) if s.success()) }
    };
    ok(&["info"]).await && ok(&["image", "inspect", image]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_killed_by_a_signal_reports_the_signal() {
        assert_eq!(container_exit(TaskExit::Code(137)), TaskExit::Signal(9));
        assert_eq!(container_exit(TaskExit::Code(143)), TaskExit::Signal(15));
        for code in [0, 1, 2, 125, 126, 127, 128, 193] {
            assert_eq!(container_exit(TaskExit::Code(code)), TaskExit::Code(code));
        }
        assert_eq!(container_exit(TaskExit::Signal(9)), TaskExit::Signal(9));
    }
}
