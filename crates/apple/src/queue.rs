//! The per-device command queue as a pure state machine: the device's reports
//! drive it and it answers with the next command (or none: an empty 200).
//!
//! Commands leave the queue only on a final status (Acknowledged, Error,
//! CommandFormatError) naming their CommandUUID; a repeated or unknown report
//! changes nothing. NotNow keeps the command but it is not handed out again in
//! the same session; the next Idle starts a session and retries it.

use std::collections::{HashSet, VecDeque};

use crate::command::{CommandEnvelope, ErrorChainItem, Report, Status};

/// Where a command stands.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandState {
    /// Queued; `sent` times handed out so far.
    Pending {
        sent: u32,
    },
    /// The device said NotNow; retried after its next Idle.
    NotNow {
        sent: u32,
    },
    Acknowledged,
    Error(Vec<ErrorChainItem>),
    CommandFormatError,
    /// Dropped from the queue by a new Authenticate (re-enrollment).
    Cancelled,
}

#[derive(Debug, Clone)]
struct Entry {
    envelope: CommandEnvelope,
    state: CommandState,
    report: Option<Report>,
}

/// One device's queue and the results of its finished commands.
#[derive(Debug, Clone, Default)]
pub struct CommandQueue {
    pending: VecDeque<Entry>,
    finished: Vec<Entry>,
    /// CommandUUIDs answered NotNow in the current session.
    deferred: HashSet<String>,
}

impl CommandQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a command.
    pub fn enqueue(&mut self, envelope: CommandEnvelope) {
        self.pending.push_back(Entry {
            envelope,
            state: CommandState::Pending { sent: 0 },
            report: None,
        });
    }

    /// Applies a report and returns the command to send next, if any.
    pub fn on_report(&mut self, report: &Report) -> Option<&CommandEnvelope> {
        let uuid = report.command_uuid.as_deref();
        match report.status {
            Status::Idle => self.deferred.clear(),
            Status::NotNow => {
                if let Some(e) = uuid.and_then(|u| self.pending_mut(u)) {
                    let sent = e.sent();
                    e.state = CommandState::NotNow { sent };
                    let u = e.envelope.command_uuid.clone();
                    self.deferred.insert(u);
                }
            }
            status => {
                let pos = uuid.and_then(|u| {
                    self.pending
                        .iter()
                        .position(|e| e.envelope.command_uuid == u)
                });
                if let Some(mut e) = pos.and_then(|p| self.pending.remove(p)) {
                    e.state = match status {
                        Status::Acknowledged => CommandState::Acknowledged,
                        Status::Error => CommandState::Error(report.error_chain.clone()),
                        _ => CommandState::CommandFormatError,
                    };
                    e.report = Some(report.clone());
                    self.finished.push(e);
                }
            }
        }
        self.next()
    }

    /// A new Authenticate of a re-enrolling device: every queued command is
    /// cancelled. (A renewal's Authenticate must not call this.)
    pub fn on_authenticate(&mut self) {
        for mut e in self.pending.drain(..) {
            e.state = CommandState::Cancelled;
            self.finished.push(e);
        }
        self.deferred.clear();
    }

    /// The state of a command, queued or finished.
    pub fn state(&self, command_uuid: &str) -> Option<&CommandState> {
        self.entry(command_uuid).map(|e| &e.state)
    }

    /// The report that finished a command.
    pub fn result(&self, command_uuid: &str) -> Option<&Report> {
        self.entry(command_uuid).and_then(|e| e.report.as_ref())
    }

    /// Commands still queued (NotNow ones included).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn entry(&self, u: &str) -> Option<&Entry> {
        self.pending
            .iter()
            .chain(self.finished.iter())
            .find(|e| e.envelope.command_uuid == u)
    }

    fn pending_mut(&mut self, u: &str) -> Option<&mut Entry> {
        self.pending
            .iter_mut()
            .find(|e| e.envelope.command_uuid == u)
    }

    fn next(&mut self) -> Option<&CommandEnvelope> {
        let deferred = &self.deferred;
        let e = self
            .pending
            .iter_mut()
            .find(|e| !deferred.contains(&e.envelope.command_uuid))?;
        e.state = CommandState::Pending { sent: e.sent() + 1 };
        Some(&e.envelope)
    }
}

impl Entry {
    fn sent(&self) -> u32 {
        match self.state {
            CommandState::Pending { sent } | CommandState::NotNow { sent } => sent,
            _ => 0,
        }
    }
}
