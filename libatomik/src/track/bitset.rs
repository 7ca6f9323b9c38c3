//! A fixed-size set of page indices.

/// Set of indices `0..len`, one bit each.
#[derive(Debug, Clone, Default)]
pub struct PageSet {
    words: Vec<u64>,
    count: u64,
}

impl PageSet {
    /// Empty set over `0..len`.
    pub fn new(len: u64) -> PageSet {
        PageSet { words: vec![0; len.div_ceil(64) as usize], count: 0 }
    }

    /// Inserts `i`; true if it was absent.
    pub fn insert(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let fresh = self.words[w] >> b & 1 == 0;
        self.words[w] |= 1 << b;
        self.count += fresh as u64;
        fresh
    }

    /// Removes `i`; true if it was present.
    pub fn remove(&mut self, i: u64) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        let was = self.words[w] >> b & 1 == 1;
        self.words[w] &= !(1 << b);
        self.count -= was as u64;
        was
    }

    /// Whether `i` is in the set.
    pub fn contains(&self, i: u64) -> bool {
        self.words[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    /// Number of members, O(1).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when empty, O(1).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        if self.count > 0 {
            self.words.iter_mut().for_each(|w| *w = 0);
            self.count = 0;
        }
    }

    /// Members in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as u64;
                    w &= w - 1;
                    wi as u64 * 64 + b
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_iterates_in_order() {
        let mut s = PageSet::new(200);
        for i in [199, 0, 64, 63, 64] {
            s.insert(i);
        }
        assert_eq!(s.len(), 4);
        assert_eq!(s.iter().collect::<Vec<_>>(), [0, 63, 64, 199]);
        assert!(s.remove(63) && !s.remove(63));
        assert_eq!(s.len(), 3);
        s.clear();
        assert!(s.is_empty() && s.iter().next().is_none());
    }
}
