//! Page ranges: how the tracker reports sets of pages.

/// A half-open range of virtual addresses `[start, end)`, page aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Page size the tracker works in.
pub const PAGE: u64 = 4096;

impl Range {
    /// `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    /// Number of pages.
    pub const fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE
    }

    /// True if both ends are page aligned and the range is not empty.
    pub const fn is_page_aligned(&self) -> bool {
        self.start.is_multiple_of(PAGE) && self.end.is_multiple_of(PAGE) && self.start < self.end
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}-{:#x}", self.start, self.end)
    }
}

/// Merges sorted page addresses into ranges of contiguous pages.
pub fn coalesce(addrs: impl IntoIterator<Item = u64>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for a in addrs {
        match out.last_mut() {
            Some(r) if r.end == a => r.end += PAGE,
            _ => out.push(Range::new(a, a + PAGE)),
        }
    }
    out
}

/// The parts of sorted, disjoint `ranges` inside `within`, appended to `out`.
pub fn clip(ranges: &[Range], within: Range, out: &mut Vec<Range>) {
    let first = ranges.partition_point(|r| r.end <= within.start);
    for r in ranges[first..].iter().take_while(|r| r.start < within.end) {
        out.push(Range::new(r.start.max(within.start), r.end.min(within.end)));
    }
}

/// Whether `addr` lies in one of sorted, disjoint `ranges`.
pub fn contains(ranges: &[Range], addr: u64) -> bool {
    let i = ranges.partition_point(|r| r.end <= addr);
    ranges.get(i).is_some_and(|r| r.start <= addr)
}

/// Total pages in `ranges`.
pub fn total_pages(ranges: &[Range]) -> u64 {
    ranges.iter().map(Range::pages).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_neighbours_only() {
        let r = coalesce([0x1000, 0x2000, 0x4000, 0x5000, 0x9000]);
        assert_eq!(
            r,
            vec![Range::new(0x1000, 0x3000), Range::new(0x4000, 0x6000), Range::new(0x9000, 0xa000)]
        );
        assert_eq!(total_pages(&r), 5);
    }
}
