//! Row geometry: layer lengths, blocks and block-aligned split ranges.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// One layer's output rows and how they are cut among its conv stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerGeometry {
    /// `T_{l-1}`: rows of the layer's input.
    pub input_rows: usize,
    /// `T_l`: pooled output rows.
    pub rows: usize,
    /// `C_l`.
    pub channels: usize,
    /// `b_l`.
    pub block_len: usize,
    /// `B_l = T_l / b_l`.
    pub blocks: usize,
    /// Output row range of each conv stage, block-aligned, covering `0..rows` in order.
    pub splits: Vec<Range<usize>>,
}

/// Cuts `blocks` blocks into `splits` contiguous runs whose sizes differ by at most one
/// (run `i` starts at block `i * blocks / splits`), clamping `splits` to `1..=blocks` so a
/// plan is never wrong.
pub fn split_blocks(blocks: usize, splits: usize) -> Vec<Range<usize>> {
    let s = splits.clamp(1, blocks.max(1));
    (0..s)
        .map(|i| (i * blocks / s)..((i + 1) * blocks / s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_blocks_exactly_and_clamp() {
        assert_eq!(split_blocks(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(split_blocks(2, 16), vec![0..1, 1..2]);
        assert_eq!(split_blocks(5, 0), vec![0..5]);
    }
}
