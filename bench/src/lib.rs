//! Helpers for `scripts/bench.sh`, which measures a whole local crawl and
//! compares it with the ceilings below. Nothing here is used by the crawler.
//!
//! # Layout
//!
//! - `src/bin/fetchparse.rs`: the fetch+parse ceiling. One process runs
//!   [`worker::Worker::process`] over a whole demo site with no RPC, no
//!   engine and no store, and prints pages/s and its CPU time per page.
//! - `src/bin/seenset.rs`: memory per URL of the engine's seen-URL set
//!   ([`engine::scheduler::Scheduler`]).
//! - `src/bin/urlstore.rs`: bytes per URL of the engine's URL store
//!   (`--state_dir`), on disk and in memory, and how long a resume takes
//!   to read it back.
//! - this file: reading the process's own CPU time and memory from `/proc`.

use std::time::Duration;

/// User plus system CPU time of this process so far, from
/// `/proc/self/stat` (fields 14 and 15, in clock ticks). `None` off Linux.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after it start
    // past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3, so field N is fields[N - 3].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // The kernel reports these in USER_HZ, which is 100 on every Linux
    // target Rust supports; asking sysconf would need libc for one constant.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// A `kB` line of `/proc/self/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}
