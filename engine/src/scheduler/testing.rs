//! Helpers for the scheduler's tests and the crawl loop's.

use super::*;

pub fn req(url: &str, depth: u32) -> Request {
    Request {
        url: url.into(),
        parser: ParserSpec::named("p"),
        depth,
        hints: Default::default(),
    }
}

pub fn open() -> Scheduler {
    let scope = Scope::new(vec!["*".into()], vec![], vec![], vec![]);
    Scheduler::new(None, scope, Politeness::default())
}

pub fn take(s: &mut Scheduler, now: Instant) -> Task {
    match s.next(now) {
        Next::Task(t) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}
