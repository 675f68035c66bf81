//! Poison pages: requests during which a worker was lost (its connection
//! dropped, or it stopped answering even `status`), so that a page that
//! kills workers (an OOM, a crash) costs at most two worker losses instead
//! of going round the whole pool.
//!
//! # The rule
//!
//! When a worker's connection is lost, every call in flight on it fails at
//! once, and nothing says which of them killed it. So:
//!
//! 1. Every request in flight during a loss gets one strike and becomes a
//!    *suspect*. The loss is not its fault yet: it is sent again without
//!    using up one of its `max_attempts` (the collateral of a loss must
//!    not be failed for someone else's page).
//! 2. Suspects are sent again **one at a time**: a suspect is *parked*
//!    here, out of the scheduler, and released into it only while no
//!    other suspect is queued or in flight. Fresh requests flow meanwhile.
//! 3. A suspect that gets an answer (a page or a page error) is cleared:
//!    the worker survived it.
//! 4. A suspect in flight during a second, different loss is *poison*:
//!    recorded as failed with kind `poison`, never sent again. Because
//!    only one suspect is ever in flight, the second loss names it alone;
//!    the fresh requests in flight beside it only get their first strike.
//!
//! An innocent request is called poison only if two separate losses each
//! happen while it is in flight, the second while it is the one suspect
//! out (say, two different killer pages, or a worker restarted twice).
//! Serializing suspects costs some speed after a loss (suspects trickle
//! out one by one); it is paid only after a worker was lost.
//!
//! Strikes are not kept in the state dir: after a resume every request
//! starts clean, and a killer page may cost two more losses.

use std::collections::{HashMap, VecDeque};

use crate::pool::ConnectionId;
use crate::scheduler::{fingerprint, Task};

/// The `kind` of a request failed as poison, in the summary and the
/// failures file.
pub const POISON: &str = "poison";

/// The first loss a suspect was in flight for.
#[derive(Debug, Clone)]
struct Strike {
    connection: ConnectionId,
    reason: String,
}

/// What to do with a request whose call was in flight during a loss.
#[derive(Debug, PartialEq)]
pub enum Loss {
    /// First strike: parked, sent again later without using an attempt.
    Parked,
    /// Second loss: fail it for good, with this reason.
    Poison {
        /// The request, to record as failed (boxed: a task is large beside
        /// `Parked`).
        task: Box<Task>,
        /// Both losses, for the failures file.
        reason: String,
    },
}

/// The suspects of a crawl: strikes, parked requests, the one released.
#[derive(Debug, Default)]
pub struct Suspects {
    /// By URL fingerprint; only requests with one strike.
    strikes: HashMap<u64, Strike>,
    /// Suspects waiting for their turn, oldest first.
    parked: VecDeque<Task>,
    /// The suspect currently queued in the scheduler or in flight.
    released: Option<u64>,
}

impl Suspects {
    /// `task`'s call failed and its worker was found lost (connection
    /// `connection`, `reason` saying how).
    pub fn on_loss(&mut self, task: Task, connection: ConnectionId, reason: &str) -> Loss {
        let fp = fingerprint(&task.request.url);
        if self.released == Some(fp) {
            self.released = None;
        }
        match self.strikes.get(&fp) {
            Some(first) if first.connection != connection => {
                let first = self.strikes.remove(&fp).expect("just found");
                Loss::Poison {
                    task: Box::new(task),
                    reason: format!(
                        "a worker was lost twice while processing this request: first {}; then {reason}",
                        first.reason
                    ),
                }
            }
            // The same loss reported again (cannot happen for one call, but
            // a loss must be counted once): still one strike.
            Some(_) => {
                self.parked.push_back(task);
                Loss::Parked
            }
            None => {
                self.strikes.insert(
                    fp,
                    Strike {
                        connection,
                        reason: reason.to_owned(),
                    },
                );
                self.parked.push_back(task);
                Loss::Parked
            }
        }
    }

    /// A worker answered for `task`: it survived the page, so any strike
    /// is cleared.
    pub fn on_answer(&mut self, task: &Task) {
        if self.strikes.is_empty() {
            return;
        }
        let fp = fingerprint(&task.request.url);
        self.strikes.remove(&fp);
        if self.released == Some(fp) {
            self.released = None;
        }
    }

    /// `task` is to be sent again for a reason that is not a loss (a
    /// deadline on a worker that still answers, a panicked call task). A
    /// suspect stays one and goes back to the parking; anything else is
    /// handed back for the scheduler.
    pub fn requeue(&mut self, task: Task) -> Option<Task> {
        let fp = fingerprint(&task.request.url);
        if !self.strikes.contains_key(&fp) {
            return Some(task);
        }
        if self.released == Some(fp) {
            self.released = None;
        }
        self.parked.push_back(task);
        None
    }

    /// `task` failed for good for another reason: forget it.
    pub fn forget(&mut self, task: &Task) {
        self.on_answer(task);
    }

    /// The next suspect to send, if none is out. `out(fp)` says whether a
    /// request with this fingerprint is in flight; `scheduler_idle`
    /// whether the scheduler holds nothing. A released suspect that is in
    /// neither place was dropped by the scheduler (robots.txt changed) and
    /// no longer holds the turn.
    pub fn release(&mut self, out: impl Fn(u64) -> bool, scheduler_idle: bool) -> Option<Task> {
        if let Some(fp) = self.released {
            // Still queued or in flight: it keeps the turn.
            if !scheduler_idle || out(fp) {
                return None;
            }
            self.strikes.remove(&fp);
            self.released = None;
        }
        let task = self.parked.pop_front()?;
        self.released = Some(fingerprint(&task.request.url));
        Some(task)
    }

    /// Suspects waiting for their turn (pending work, for snapshots).
    pub fn parked(&self) -> impl Iterator<Item = &Task> {
        self.parked.iter()
    }

    /// Number of parked suspects.
    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }

    /// Takes every parked suspect out (at the end of a crawl).
    pub fn drain_parked(&mut self) -> Vec<Task> {
        self.parked.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpcsupport::{ParserSpec, Request};

    fn task(url: &str) -> Task {
        Task {
            request: Request {
                url: url.into(),
                parser: ParserSpec::named("p"),
                depth: 0,
                hints: Default::default(),
            },
            attempts: 0,
            retries: 0,
            robots: false,
            key: 0,
        }
    }

    fn conn(worker: usize, generation: u64) -> ConnectionId {
        ConnectionId { worker, generation }
    }

    fn none_out(_: u64) -> bool {
        false
    }

    /// The calls in flight during one loss are all parked, none failed, and
    /// they come back one at a time.
    #[test]
    fn one_loss_parks_everyone_and_releases_one_at_a_time() {
        let mut s = Suspects::default();
        for url in ["http://h/a", "http://h/b", "http://h/c"] {
            assert_eq!(s.on_loss(task(url), conn(0, 0), "drop"), Loss::Parked);
        }
        let first = s.release(none_out, false).unwrap();
        assert_eq!(first.request.url, "http://h/a");
        // While it is out (queued: scheduler not idle), nobody else goes.
        assert!(s.release(none_out, false).is_none());
        assert!(s.release(|_| true, true).is_none());
        s.on_answer(&first);
        assert_eq!(
            s.release(none_out, false).unwrap().request.url,
            "http://h/b"
        );
        assert_eq!(s.parked_len(), 1);
    }

    /// The page that kills a worker is poison at its second loss, with both
    /// reasons; the fresh request in flight beside it only gets a strike.
    #[test]
    fn second_loss_of_the_released_suspect_is_poison() {
        let mut s = Suspects::default();
        assert_eq!(
            s.on_loss(task("http://h/killer"), conn(0, 0), "w0 dropped"),
            Loss::Parked
        );
        assert_eq!(
            s.on_loss(task("http://h/bystander"), conn(0, 0), "w0 dropped"),
            Loss::Parked
        );
        let out = s.release(none_out, false).unwrap();
        assert_eq!(out.request.url, "http://h/killer");
        // It goes to worker 1, which dies under it and a fresh request.
        match s.on_loss(out, conn(1, 0), "w1 dropped") {
            Loss::Poison { task, reason } => {
                assert_eq!(task.request.url, "http://h/killer");
                assert!(reason.contains("w0 dropped") && reason.contains("w1 dropped"));
            }
            other => panic!("expected poison, got {other:?}"),
        }
        assert_eq!(
            s.on_loss(task("http://h/fresh"), conn(1, 0), "w1 dropped"),
            Loss::Parked
        );
        // The bystander is next, then the fresh one; neither is poison.
        let b = s.release(none_out, false).unwrap();
        assert_eq!(b.request.url, "http://h/bystander");
        s.on_answer(&b);
        let f = s.release(none_out, false).unwrap();
        assert_eq!(f.request.url, "http://h/fresh");
        s.on_answer(&f);
        assert!(s.release(none_out, false).is_none());
        assert!(s.strikes.is_empty());
    }

    /// A suspect that fails for another reason (deadline on a live worker)
    /// stays a suspect and keeps its place in the one-at-a-time line; a
    /// request without a strike goes straight back.
    #[test]
    fn requeue_keeps_suspects_parked() {
        let mut s = Suspects::default();
        assert!(s.requeue(task("http://h/plain")).is_some());
        s.on_loss(task("http://h/x"), conn(0, 3), "drop");
        let x = s.release(none_out, false).unwrap();
        assert!(s.requeue(x).is_none());
        let x = s.release(none_out, false).unwrap();
        // Still holding its first strike: a new loss makes it poison.
        assert!(matches!(
            s.on_loss(x, conn(0, 5), "drop again"),
            Loss::Poison { .. }
        ));
    }

    /// A released suspect the scheduler dropped (neither queued nor in
    /// flight) gives up its turn, so the others are not stuck behind it.
    #[test]
    fn dropped_release_frees_the_turn() {
        let mut s = Suspects::default();
        s.on_loss(task("http://h/a"), conn(0, 0), "drop");
        s.on_loss(task("http://h/b"), conn(0, 0), "drop");
        let a = s.release(none_out, false).unwrap();
        let a_fp = fingerprint(&a.request.url);
        // In flight: it keeps the turn even with an idle scheduler.
        assert!(s.release(|fp| fp == a_fp, true).is_none());
        // Gone from everywhere: the next one goes.
        assert_eq!(s.release(none_out, true).unwrap().request.url, "http://h/b");
    }
}
