//! The ECS service scheduler's part that matters here: keep `desiredCount` tasks running.
//!
//! - desired > running: start tasks. A task that exited by itself while the desired count
//!   stayed the same is replaced, and the replacement is counted as a *relaunch* (ECS does
//!   this too; idle exit inside a service therefore costs relaunches until scale-in).
//! - desired < running: stop the newest unprotected tasks (SIGTERM, then SIGKILL after the
//!   stop timeout). A task with scale-in protection is never chosen; the service stays above
//!   its desired count until the protection is cleared or expires.

use crate::agent::ProtectionBook;
use crate::launcher::{TaskExit, TaskLauncher, TaskSpec};
use std::sync::Arc;

/// ECS's default `stopTimeout` (seconds between SIGTERM and SIGKILL).
pub const DEFAULT_STOP_TIMEOUT_S: f64 = 30.0;

/// What the scheduler did in one pass, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        id: String,
        relaunch: bool,
    },
    StartFailed {
        error: String,
    },
    /// A task ended; `stopped` when it was stopping because of scale-in.
    Exited {
        id: String,
        exit: TaskExit,
        stopped: bool,
    },
    /// SIGTERM sent for scale-in.
    Stopping {
        id: String,
    },
    /// Still alive after the stop timeout: SIGKILL sent.
    Killed {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskState {
    Running,
    Stopping { since_s: f64, killed: bool },
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    pub arn: String,
    pub started_s: f64,
    pub state: TaskState,
    seq: u64,
}

/// Names a task: its ARN prefix and the agent endpoint it is given.
#[derive(Debug, Clone)]
pub struct TaskNaming {
    /// `arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER`; the task id is appended.
    pub arn_prefix: String,
    /// `http://127.0.0.1:PORT/v3`; `ECS_AGENT_URI` is this plus `/<task-id>`. `None`: no
    /// agent endpoint (tasks run without protection).
    pub agent_base: Option<String>,
}

pub struct Scheduler<L> {
    launcher: L,
    book: Arc<ProtectionBook>,
    naming: TaskNaming,
    stop_timeout_s: f64,
    tasks: Vec<Task>,
    next_seq: u64,
    /// Tasks that exited by themselves and are not yet replaced.
    unreplaced_exits: u32,
    relaunches: u32,
    starts: u32,
}

impl<L: TaskLauncher> Scheduler<L> {
    pub fn new(
        launcher: L,
        book: Arc<ProtectionBook>,
        naming: TaskNaming,
        stop_timeout_s: f64,
    ) -> Self {
        Scheduler {
            launcher,
            book,
            naming,
            stop_timeout_s,
            tasks: Vec::new(),
            next_seq: 0,
            unreplaced_exits: 0,
            relaunches: 0,
            starts: 0,
        }
    }

    pub fn launcher(&self) -> &L {
        &self.launcher
    }

    pub fn launcher_mut(&mut self) -> &mut L {
        &mut self.launcher
    }

    /// Every task that has not exited, stopping ones included (ECS's running tasks).
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Tasks alive, including those stopping.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Tasks alive and not stopping: what the desired count is compared with.
    pub fn active(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.state == TaskState::Running)
            .count()
    }

    /// Starts that replaced a task which had exited by itself.
    pub fn relaunches(&self) -> u32 {
        self.relaunches
    }

    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// One pass: collect exits, escalate overdue stops, then start or stop tasks to reach
    /// `desired`. Protection is read from the book at `now_s`.
    pub fn reconcile(&mut self, now_s: f64, desired: u32) -> Vec<Event> {
        let mut events = Vec::new();
        self.collect_exits(&mut events);
        self.escalate(now_s, &mut events);

        let desired = desired as usize;
        let active = self.active();
        if desired > active {
            let missing = desired - active;
            self.unreplaced_exits = self
                .unreplaced_exits
                .min(u32::try_from(missing).unwrap_or(u32::MAX));
            for _ in 0..missing {
                match self.start_one(now_s) {
                    Ok(id) => {
                        let relaunch = self.unreplaced_exits > 0;
                        if relaunch {
                            self.unreplaced_exits -= 1;
                            self.relaunches += 1;
                        }
                        events.push(Event::Started { id, relaunch });
                    }
                    Err(error) => {
                        // Retried on the next pass, like ECS retrying placement.
                        events.push(Event::StartFailed { error });
                        break;
                    }
                }
            }
        } else {
            self.unreplaced_exits = 0;
            if desired < active {
                self.stop_excess(now_s, active - desired, &mut events);
            }
        }
        events
    }

    fn collect_exits(&mut self, events: &mut Vec<Event>) {
        for (id, exit) in self.launcher.reap() {
            let Some(pos) = self.tasks.iter().position(|t| t.id == id) else {
                continue;
            };
            let task = self.tasks.remove(pos);
            self.book.forget(&id);
            let stopped = matches!(task.state, TaskState::Stopping { .. });
            if !stopped {
                self.unreplaced_exits += 1;
            }
            events.push(Event::Exited { id, exit, stopped });
        }
    }

    fn escalate(&mut self, now_s: f64, events: &mut Vec<Event>) {
        for task in &mut self.tasks {
            if let TaskState::Stopping {
                since_s,
                killed: false,
            } = task.state
                && now_s >= since_s + self.stop_timeout_s
            {
                if let Err(e) = self.launcher.kill(&task.id) {
                    tracing::warn!(task = %task.id, error = %e, "SIGKILL failed");
                }
                task.state = TaskState::Stopping {
                    since_s,
                    killed: true,
                };
                events.push(Event::Killed {
                    id: task.id.clone(),
                });
            }
        }
    }

    fn start_one(&mut self, now_s: f64) -> Result<String, String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let arn = format!("{}/{id}", self.naming.arn_prefix);
        let mut env = Vec::new();
        if let Some(base) = &self.naming.agent_base {
            env.push(("ECS_AGENT_URI".to_owned(), format!("{base}/{id}")));
        }
        self.book.register(&id, &arn);
        let spec = TaskSpec {
            id: id.clone(),
            arn: arn.clone(),
            env,
        };
        if let Err(e) = self.launcher.start(&spec) {
            self.book.forget(&id);
            return Err(e.to_string());
        }
        self.starts += 1;
        self.tasks.push(Task {
            id: id.clone(),
            arn,
            started_s: now_s,
            state: TaskState::Running,
            seq: self.next_seq,
        });
        self.next_seq += 1;
        Ok(id)
    }

    fn stop_excess(&mut self, now_s: f64, excess: usize, events: &mut Vec<Event>) {
        // Newest first: the oldest tasks are the likeliest to be holding work that is
        // nearly done. Protected tasks are never candidates.
        let mut candidates: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| {
                self.tasks[i].state == TaskState::Running
                    && !self.book.is_protected(&self.tasks[i].id, now_s)
            })
            .collect();
        candidates.sort_by_key(|&i| std::cmp::Reverse(self.tasks[i].seq));
        for i in candidates.into_iter().take(excess) {
            let task = &mut self.tasks[i];
            if let Err(e) = self.launcher.terminate(&task.id) {
                tracing::warn!(task = %task.id, error = %e, "SIGTERM failed");
            }
            task.state = TaskState::Stopping {
                since_s: now_s,
                killed: false,
            };
            events.push(Event::Stopping {
                id: task.id.clone(),
            });
        }
    }

    /// Stops every task (shutdown of the control plane): SIGTERM now; later passes of
    /// [`Scheduler::reconcile`] with desired 0 escalate to SIGKILL after the stop timeout.
    /// Protection is ignored: the control plane itself is going away.
    pub fn stop_all(&mut self, now_s: f64) -> Vec<Event> {
        let mut events = Vec::new();
        for task in &mut self.tasks {
            if task.state == TaskState::Running {
                if let Err(e) = self.launcher.terminate(&task.id) {
                    tracing::warn!(task = %task.id, error = %e, "SIGTERM failed");
                }
                task.state = TaskState::Stopping {
                    since_s: now_s,
                    killed: false,
                };
                events.push(Event::Stopping {
                    id: task.id.clone(),
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::LaunchError;
    use pretty_assertions::assert_eq;

    /// Records calls; the test decides when tasks exit.
    #[derive(Default)]
    struct Fake {
        started: Vec<TaskSpec>,
        terminated: Vec<String>,
        killed: Vec<String>,
        exits: Vec<(String, TaskExit)>,
        fail_next_start: bool,
    }

    impl TaskLauncher for Fake {
        fn start(&mut self, spec: &TaskSpec) -> Result<(), LaunchError> {
            if std::mem::take(&mut self.fail_next_start) {
                return Err(LaunchError::Spawn {
                    program: "fake".into(),
                    source: std::io::Error::other("no capacity"),
                });
            }
            self.started.push(spec.clone());
            Ok(())
        }
        fn reap(&mut self) -> Vec<(String, TaskExit)> {
            std::mem::take(&mut self.exits)
        }
        fn terminate(&mut self, id: &str) -> Result<(), LaunchError> {
            self.terminated.push(id.to_owned());
            Ok(())
        }
        fn kill(&mut self, id: &str) -> Result<(), LaunchError> {
            self.killed.push(id.to_owned());
            Ok(())
        }
        fn describe(&self) -> String {
            "fake".into()
        }
    }

    fn scheduler() -> (Scheduler<Fake>, Arc<ProtectionBook>) {
        let book = ProtectionBook::new();
        let naming = TaskNaming {
            arn_prefix: "arn:aws:ecs:us-east-1:123456789012:task/custodian-cluster".into(),
            agent_base: Some("http://127.0.0.1:9/v3".into()),
        };
        (
            Scheduler::new(Fake::default(), book.clone(), naming, 30.0),
            book,
        )
    }

    fn ids(s: &Scheduler<Fake>) -> Vec<String> {
        s.tasks().iter().map(|t| t.id.clone()).collect()
    }

    #[test]
    fn starts_up_to_desired_with_agent_uri_and_arn() {
        let (mut s, book) = scheduler();
        let events = s.reconcile(0.0, 3);
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| matches!(
            e,
            Event::Started {
                relaunch: false,
                ..
            }
        )));
        let spec = &s.launcher().started[0];
        assert_eq!(spec.id.len(), 32);
        assert_eq!(
            spec.arn,
            format!(
                "arn:aws:ecs:us-east-1:123456789012:task/custodian-cluster/{}",
                spec.id
            )
        );
        assert_eq!(
            spec.env,
            vec![(
                "ECS_AGENT_URI".to_owned(),
                format!("http://127.0.0.1:9/v3/{}", spec.id)
            )]
        );
        // Registered with the agent, unprotected.
        assert_eq!(book.set(&spec.id, true, Some(1), 0.0), Ok(Some(60.0)));
        assert_eq!(s.reconcile(1.0, 3), vec![]);
        assert_eq!((s.running(), s.active(), s.starts()), (3, 3, 3));
    }

    #[test]
    fn replaces_exited_tasks_and_counts_relaunches() {
        let (mut s, book) = scheduler();
        s.reconcile(0.0, 2);
        let first = ids(&s)[0].clone();
        s.launcher_mut()
            .exits
            .push((first.clone(), TaskExit::Code(0)));
        let events = s.reconcile(5.0, 2);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0],
            Event::Exited {
                id: first.clone(),
                exit: TaskExit::Code(0),
                stopped: false
            }
        );
        assert!(matches!(events[1], Event::Started { relaunch: true, .. }));
        assert_eq!((s.relaunches(), s.starts(), s.running()), (1, 3, 2));
        // The exited task is forgotten by the agent endpoint.
        assert!(book.set(&first, true, None, 5.0).is_err());
    }

    #[test]
    fn exit_during_scale_down_is_not_replaced() {
        let (mut s, _) = scheduler();
        s.reconcile(0.0, 2);
        let first = ids(&s)[0].clone();
        s.launcher_mut().exits.push((first, TaskExit::Code(0)));
        // Desired dropped to 1 at the same time: nothing to replace, nothing to stop.
        let events = s.reconcile(5.0, 1);
        assert_eq!(events.len(), 1);
        assert_eq!((s.relaunches(), s.running()), (0, 1));
        // A later scale-out is a fresh start, not a relaunch.
        let events = s.reconcile(6.0, 2);
        assert!(matches!(
            events[0],
            Event::Started {
                relaunch: false,
                ..
            }
        ));
        assert_eq!(s.relaunches(), 0);
    }

    #[test]
    fn scale_in_stops_unprotected_newest_first_and_spares_protected() {
        let (mut s, book) = scheduler();
        s.reconcile(0.0, 1);
        s.reconcile(1.0, 2);
        s.reconcile(2.0, 3);
        let [a, b, c] = <[String; 3]>::try_from(ids(&s)).unwrap();
        // The newest task (c) is busy and protected for 2 minutes.
        book.set(&c, true, Some(2), 10.0).unwrap();
        let events = s.reconcile(20.0, 1);
        assert_eq!(
            events,
            vec![
                Event::Stopping { id: b.clone() },
                Event::Stopping { id: a.clone() }
            ]
        );
        assert_eq!(s.launcher().terminated, vec![b.clone(), a.clone()]);
        assert_eq!((s.running(), s.active()), (3, 1));

        // Scale to 0: the protected task is still spared.
        assert_eq!(s.reconcile(21.0, 0), vec![]);
        // The stop timeout (30 s) passes for a and b: SIGKILL. c stays protected until 130.
        assert_eq!(
            s.reconcile(129.0, 0),
            vec![
                Event::Killed { id: a.clone() },
                Event::Killed { id: b.clone() }
            ]
        );
        assert_eq!(s.launcher().killed, vec![a.clone(), b.clone()]);
        // Protection has expired: now c is stopped too.
        assert_eq!(
            s.reconcile(131.0, 0),
            vec![Event::Stopping { id: c.clone() }]
        );
        s.launcher_mut().exits = vec![
            (a.clone(), TaskExit::Signal(9)),
            (c.clone(), TaskExit::Code(0)),
        ];
        let events = s.reconcile(132.0, 0);
        assert_eq!(
            events,
            vec![
                Event::Exited {
                    id: a,
                    exit: TaskExit::Signal(9),
                    stopped: true
                },
                Event::Exited {
                    id: c,
                    exit: TaskExit::Code(0),
                    stopped: true
                },
            ]
        );
        assert_eq!((s.running(), s.relaunches()), (1, 0));
    }

    #[test]
    fn protection_cleared_early_allows_stop() {
        let (mut s, book) = scheduler();
        s.reconcile(0.0, 1);
        let a = ids(&s)[0].clone();
        book.set(&a, true, None, 0.0).unwrap();
        assert_eq!(s.reconcile(10.0, 0), vec![]);
        book.set(&a, false, None, 11.0).unwrap();
        assert_eq!(s.reconcile(12.0, 0), vec![Event::Stopping { id: a }]);
    }

    #[test]
    fn failed_start_is_retried_next_pass() {
        let (mut s, _) = scheduler();
        s.launcher_mut().fail_next_start = true;
        let events = s.reconcile(0.0, 2);
        assert_eq!(events.len(), 1);
        assert!(
            matches!(&events[0], Event::StartFailed { error } if error.contains("no capacity"))
        );
        assert_eq!(s.running(), 0);
        assert_eq!(s.reconcile(1.0, 2).len(), 2);
        assert_eq!(s.running(), 2);
    }

    #[test]
    fn stop_all_ignores_protection() {
        let (mut s, book) = scheduler();
        s.reconcile(0.0, 2);
        for id in ids(&s) {
            book.set(&id, true, None, 0.0).unwrap();
        }
        assert_eq!(s.stop_all(1.0).len(), 2);
        assert_eq!(s.active(), 0);
    }
}
