//! Generations: the site as it looks after `n` rounds of edits (issue 13).
//!
//! Generation 0 is the site every earlier test knows. Each step after it
//! changes about one profile in ten ([`changed`]) and removes about one in
//! a hundred for good ([`removed`]), both decided by a hash of (id,
//! generation), so a test can predict any generation without running the
//! ones before it. [`Generation`] is the live knob a running site reads on
//! every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::profile::field_hash;

/// One profile in `CHANGE_ONE_IN` changes per generation step.
const CHANGE_ONE_IN: u64 = 10;
/// One profile in `REMOVE_ONE_IN` is removed per generation step.
const REMOVE_ONE_IN: u64 = 100;
/// Hash salts, apart from the profile fields' small ones (see `profile`).
const CHANGE_SALT: u64 = 0x6368_616e_6765_0000;
const REMOVE_SALT: u64 = 0x7265_6d6f_7665_0000;

/// Highest generation a site serves: [`removed`] and the edit count cost
/// one hash per generation per profile, so a typo like `--generation
/// 1000000000` must not turn every request into seconds of work. Higher
/// values are served as this one (and refused by the flag and the POST).
pub const MAX_GENERATION: u64 = 10_000;

/// The generation a running site serves: cheap to clone, every clone sees
/// the same value, so a test keeps one and moves the site forward while a
/// crawl runs (also `POST /_site/generation/{n}`).
#[derive(Debug, Clone, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    /// A handle starting at generation `n`.
    pub fn new(n: u64) -> Generation {
        Generation(Arc::new(AtomicU64::new(n)))
    }

    /// The generation served now (at most [`MAX_GENERATION`]).
    pub fn get(&self) -> u64 {
        // Relaxed: the value orders nothing else; a request that races a
        // set() may see either generation, as a real site's reader would.
        self.0.load(Ordering::Relaxed).min(MAX_GENERATION)
    }

    /// Serves generation `n` from the next request on.
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// Whether the step into `generation` edits profile `id` (before asking
/// whether it was removed).
fn edited_at(id: u64, generation: u64) -> bool {
    generation > 0 && field_hash(id, CHANGE_SALT + generation).is_multiple_of(CHANGE_ONE_IN)
}

/// Whether the step into `generation` removes profile `id` (if it still
/// existed).
fn removed_at(id: u64, generation: u64) -> bool {
    generation > 0 && field_hash(id, REMOVE_SALT + generation).is_multiple_of(REMOVE_ONE_IN)
}

/// The generation that removed profile `id`, if one up to `generation` did.
/// Costs one hash per generation: tests use a handful, and even the
/// binary's `--generation 1000` is a microsecond per profile.
pub fn removed_in(id: u64, generation: u64) -> Option<u64> {
    (1..=generation).find(|&g| removed_at(id, g))
}

/// Whether profile `id` no longer exists in `generation`: about 1% of the
/// profiles per step, cumulative (once removed, removed in every later
/// generation), never in generation 0.
pub fn removed(id: u64, generation: u64) -> bool {
    removed_in(id, generation).is_some()
}

/// Whether profile `id`'s fields in `generation` differ from generation
/// `generation - 1`: about 10% of the profiles per step, never in
/// generation 0, and never for a profile removed by then (it has no fields
/// left to compare).
pub fn changed(id: u64, generation: u64) -> bool {
    edited_at(id, generation) && !removed(id, generation)
}

/// How many times profile `id` was edited up to `generation`: the
/// profile's fields are generation 0's shifted by this count (see
/// [`crate::Site::profile_at`]), so every edit really changes them.
pub(crate) fn edits(id: u64, generation: u64) -> u64 {
    (1..=generation).filter(|&g| edited_at(id, g)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rates over 20,000 profiles are near 10% and 1% a step, and nothing
    /// changes or disappears in generation 0.
    #[test]
    fn rates_are_as_documented() {
        let ids = 1..=20_000u64;
        assert!(ids.clone().all(|id| !changed(id, 0) && !removed(id, 0)));
        for g in 1..=5 {
            let c = ids.clone().filter(|&id| changed(id, g)).count();
            let newly = ids
                .clone()
                .filter(|&id| removed(id, g) && !removed(id, g - 1))
                .count();
            assert!((1_700..2_300).contains(&c), "generation {g}: {c} changed");
            assert!(
                (130..280).contains(&newly),
                "generation {g}: {newly} removed"
            );
        }
    }

    /// Once removed, a profile stays removed, and a removed profile never
    /// counts as changed.
    #[test]
    fn removed_is_cumulative() {
        for id in 1..=5_000u64 {
            for g in 1..=20 {
                if removed(id, g - 1) {
                    assert!(removed(id, g), "{id} came back in {g}");
                }
                if removed(id, g) {
                    assert!(!changed(id, g));
                }
            }
        }
    }

    /// All clones of a handle see one value.
    #[test]
    fn generation_handle_is_shared() {
        let a = Generation::new(2);
        let b = a.clone();
        b.set(7);
        assert_eq!(a.get(), 7);
        assert_eq!(Generation::default().get(), 0);
    }
}
