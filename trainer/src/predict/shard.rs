//! `--shard I/N`: one of N contiguous shares of an input's lines, so that N machines
//! (or the N tasks of a batch system's array job) each classify one and their outputs,
//! concatenated in shard order, are what one machine would have written.
//!
//! Shares are whole chunks: a text is classified in the same chunk, so in the same
//! padded batch, whichever machine reads it, which keeps the outputs identical byte for
//! byte and not merely close.

use std::ops::Range;
use std::str::FromStr;

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0 to `count - 1`.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}`: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The whole input.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The lines (1-based, end excluded) of this shard of an input of `lines` lines
    /// read in chunks of `chunk` lines.
    pub fn lines(self, lines: usize, chunk: usize) -> Range<usize> {
        if self == Shard::ALL {
            return 1..usize::MAX;
        }
        let chunks = lines.div_ceil(chunk);
        let first = |i: usize| i * chunks / self.count * chunk + 1;
        first(self.index)..first(self.index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_tile_the_input_in_whole_chunks() {
        for n in [1, 3, 7] {
            let shards: Vec<Range<usize>> = (0..n)
                .map(|i| Shard { index: i, count: n }.lines(1000, 16))
                .collect();
            assert_eq!(shards[0].start, 1);
            for pair in shards.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!((pair[0].end - 1) % 16, 0, "shards start on a chunk");
            }
            assert!(shards[n - 1].end > 1000);
        }
        assert_eq!("2/7".parse::<Shard>(), Ok(Shard { index: 2, count: 7 }));
        for bad in ["7/7", "1", "a/3", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
