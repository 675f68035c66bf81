//! The set of URLs ever queued, as 64-bit fingerprints in an
//! open-addressing table built for memory: 8 bytes a slot, filled up to
//! 85% and grown by half, so a URL costs between 9.4 and 14.1 bytes however
//! many there are (a `HashSet<u64>` costs 10 to 21: a control byte per slot
//! and doubling growth). A million URLs fit in about 13 MB.

/// Most slots in use before the table grows (as a fraction of 1000).
const MAX_LOAD_PER_MILLE: usize = 850;

/// A set of non-zero-mapped `u64` fingerprints.
#[derive(Debug, Clone, Default)]
pub struct SeenSet {
    /// 0 marks an empty slot; a fingerprint of 0 is stored as 1 (one more
    /// collision among 2^64 values, which the crawler already accepts).
    slots: Vec<u64>,
    len: usize,
}

impl SeenSet {
    /// An empty set.
    pub fn new() -> SeenSet {
        SeenSet::default()
    }

    /// Adds `fp`; false if it was already there.
    pub fn insert(&mut self, fp: u64) -> bool {
        let fp = fp.max(1);
        if (self.len + 1) * 1000 > self.slots.len() * MAX_LOAD_PER_MILLE {
            self.grow();
        }
        let mut i = self.home(fp);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = fp;
                    self.len += 1;
                    return true;
                }
                x if x == fp => return false,
                _ => i = if i + 1 == self.slots.len() { 0 } else { i + 1 },
            }
        }
    }

    /// Whether `fp` is in the set.
    pub fn contains(&self, fp: u64) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let fp = fp.max(1);
        let mut i = self.home(fp);
        loop {
            match self.slots[i] {
                0 => return false,
                x if x == fp => return true,
                _ => i = if i + 1 == self.slots.len() { 0 } else { i + 1 },
            }
        }
    }

    /// Fingerprints stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every fingerprint, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().copied().filter(|&x| x != 0)
    }

    /// Bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }

    /// The slot a fingerprint starts probing from. The fingerprint is mixed
    /// first (FNV's high bits are weak) and mapped onto the table by a
    /// multiply-shift, which works for any table size, not just powers of 2.
    fn home(&self, fp: u64) -> usize {
        let mut z = fp.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z as u128 * self.slots.len() as u128) >> 64) as usize
    }

    fn grow(&mut self) {
        let new_len = (self.slots.len() + self.slots.len() / 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![0; new_len]);
        self.len = 0;
        for fp in old.into_iter().filter(|&x| x != 0) {
            self.insert(fp);
        }
    }
}

impl Extend<u64> for SeenSet {
    fn extend<T: IntoIterator<Item = u64>>(&mut self, iter: T) {
        for fp in iter {
            self.insert(fp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts report novelty, lookups agree, across many resizes.
    #[test]
    fn behaves_like_a_set() {
        let mut s = SeenSet::new();
        let mut rng = 0x1234_5678_u64;
        let mut values = Vec::new();
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            values.push(rng);
            assert!(s.insert(rng));
        }
        assert_eq!(s.len(), 100_000);
        for &v in &values {
            assert!(!s.insert(v));
            assert!(s.contains(v));
        }
        assert!(!s.contains(42));
        assert!(s.insert(0) && !s.insert(0) && s.contains(0));
        assert_eq!(s.iter().count(), 100_001);
    }

    /// Memory stays under 16 bytes a URL at every size up to a million.
    #[test]
    fn memory_per_fingerprint_is_bounded() {
        let mut s = SeenSet::new();
        for i in 1..=1_000_000u64 {
            s.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            if i % 50_000 == 0 {
                let per = s.heap_bytes() as f64 / i as f64;
                assert!(per <= 16.0, "{per} bytes per URL at {i}");
            }
        }
    }
}
