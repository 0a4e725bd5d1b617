//! The stage kernels: the only implementation of the model's maths.
//!
//! Activations are time-major `[rows, channels]` row-major `f32` slices. The monolithic
//! forward ([`crate::TfilmModel::forward`]) is a loop over these functions, and the
//! serverless stages call the same functions on row ranges, which is why a split run
//! equals the whole one. Equation numbers refer to docs/design.md §1.

use std::mem::MaybeUninit;
use std::ops::Range;

use rayon::prelude::*;

use crate::config::LayerConfig;
use crate::error::{ModelError, Result};
use crate::weights::{AffineWeights, ConvWeights, LstmWeights};

pub mod lstm;
mod vmath;

/// Conv output rows computed per GEMM call: large enough to amortise packing, small enough
/// that the `[tile, C_out]` result stays in L2 before it is pooled.
pub const CONV_TILE_ROWS: usize = 512;

/// Step 2: `x_0 = embedding[ids]`, `[ids.len(), E]`.
pub fn embed(embedding: &[f32], embed_dim: usize, ids: &[u16]) -> Vec<f32> {
    let mut x = vec![0.0; ids.len() * embed_dim];
    x.par_chunks_mut(embed_dim * 1024)
        .zip(ids.par_chunks(1024))
        .for_each(|(rows, ids)| {
            for (row, &id) in rows.chunks_exact_mut(embed_dim).zip(ids) {
                let start = id as usize * embed_dim;
                row.copy_from_slice(&embedding[start..start + embed_dim]);
            }
        });
    x
}

/// The rows of a layer's input that a conv stage reads, already modulated (step 3, first
/// bullet). `rows` covers input rows `start .. start + rows.len() / channels` of a
/// sequence of `total_rows` rows.
#[derive(Debug, Clone, Copy)]
pub struct InputRows<'a> {
    /// Row-major `[n, channels]`.
    pub rows: &'a [f32],
    /// Global index of the first row held.
    pub start: usize,
    /// Length of the whole input sequence (`T_{l-1}`), which decides where zero padding goes.
    pub total_rows: usize,
}

/// The input rows (global, before clipping to the sequence) that conv stage output rows
/// `out_rows` depend on: the pooled range widened by the kernel's reach (the halo).
pub fn conv_input_span(
    kernel_left: usize,
    kernel_right: usize,
    pool: usize,
    out_rows: &Range<usize>,
    total_rows: usize,
) -> Range<usize> {
    let lo = (out_rows.start * pool).saturating_sub(kernel_left);
    let hi = (out_rows.end * pool + kernel_right).min(total_rows);
    lo..hi
}

/// Step 3, bullets 2 and 3: `a = relu(maxpool(conv1d(x, W, bias), p))` for pooled output
/// rows `out_rows`, with zero "same" padding only at the two ends of the whole sequence.
///
/// `input` must hold every row of [`conv_input_span`]; rows outside the sequence are read as
/// zeros. Work is spread over the current rayon pool in tiles of [`CONV_TILE_ROWS`].
pub fn conv_pool_relu(
    conv: &ConvWeights,
    pool: usize,
    input: InputRows<'_>,
    out_rows: Range<usize>,
) -> Result<Vec<f32>> {
    let (c_in, c_out, k) = (conv.in_channels, conv.out_channels, conv.kernel);
    let (left, right) = LayerConfig::same_padding(k);
    if !input.rows.len().is_multiple_of(c_in) {
        return Err(ModelError::Shape(format!(
            "input holds {} values, not a whole number of {c_in}-channel rows",
            input.rows.len()
        )));
    }
    let held = input.start..input.start + input.rows.len() / c_in;
    let needed = conv_input_span(left, right, pool, &out_rows, input.total_rows);
    if out_rows.end * pool > input.total_rows || needed.start < held.start || needed.end > held.end
    {
        return Err(ModelError::Shape(format!(
            "output rows {out_rows:?} (pool {pool}) need input rows {needed:?} of {}, but rows {held:?} were given",
            input.total_rows
        )));
    }
    // Left uninitialised: zeroing it first would be one more pass over the whole
    // activation, and `pool_relu` writes every element.
    let len = out_rows.len() * c_out;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let tile_out_rows = (CONV_TILE_ROWS / pool).max(1);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(tile_out_rows * c_out)
        .enumerate()
        .for_each(|(tile, out_tile)| {
            let first_out = out_rows.start + tile * tile_out_rows;
            let n_out = out_tile.len() / c_out;
            let conv_rows = first_out * pool..(first_out + n_out) * pool;
            let conv_out = conv_tile(conv, input, held.clone(), conv_rows);
            pool_relu(&conv_out, pool, c_out, out_tile);
        });
    // SAFETY: the tiles cover the first `len` elements, and `pool_relu` initialised each.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// A row-major matrix operand: `rows x cols` read from `data` with the given strides, so a
/// transposed weight or overlapping im2col windows need no copy.
struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl Operand<'_> {
    /// Index one past the last element read for a `rows x cols` view.
    fn extent(&self, rows: usize, cols: usize) -> usize {
        (rows - 1) * self.row_stride + (cols - 1) * self.col_stride + 1
    }
}

/// `dst[m, n] += lhs[m, k] @ rhs[k, n]` on one thread, `dst` contiguous row-major.
fn gemm_accumulate(
    dst: &mut [f32],
    lhs: Operand<'_>,
    rhs: Operand<'_>,
    m: usize,
    n: usize,
    k: usize,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    assert!(
        dst.len() >= m * n
            && lhs.data.len() >= lhs.extent(m, k)
            && rhs.data.len() >= rhs.extent(k, n)
    );
    // SAFETY: the assertion bounds every element gemm reads or writes; `dst` is borrowed
    // mutably, so it is disjoint from the two operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The convolution for conv rows `rows`, as one GEMM over overlapping windows of the input.
fn conv_tile(
    conv: &ConvWeights,
    input: InputRows<'_>,
    held: Range<usize>,
    rows: Range<usize>,
) -> Vec<f32> {
    let (c_in, c_out, k) = (conv.in_channels, conv.out_channels, conv.kernel);
    let (left, _) = LayerConfig::same_padding(k);
    // Window of input rows this tile reads, in signed global coordinates.
    let lo = rows.start as isize - left as isize;
    let hi = lo + (rows.len() + k - 1) as isize;
    let inside = lo >= held.start as isize && hi <= held.end as isize;
    let padded;
    let window: &[f32] = if inside {
        let from = (lo as usize - held.start) * c_in;
        &input.rows[from..from + (rows.len() + k - 1) * c_in]
    } else {
        // Only the tiles at the ends of the sequence (or of a split) pay for a copy.
        let mut buf = vec![0.0; (rows.len() + k - 1) * c_in];
        for (i, dst) in buf.chunks_exact_mut(c_in).enumerate() {
            let t = lo + i as isize;
            if t >= 0 && (t as usize) < input.total_rows && held.contains(&(t as usize)) {
                let src = (t as usize - held.start) * c_in;
                dst.copy_from_slice(&input.rows[src..src + c_in]);
            }
        }
        padded = buf;
        &padded
    };
    let mut out = Vec::with_capacity(rows.len() * c_out);
    for _ in 0..rows.len() {
        out.extend_from_slice(&conv.bias);
    }
    // Row r of the implicit im2col matrix is the k*c_in values from input row r: a stride of
    // c_in with width k*c_in, read straight from the window.
    gemm_accumulate(
        &mut out,
        Operand {
            data: window,
            row_stride: c_in,
            col_stride: 1,
        },
        Operand {
            data: &conv.packed,
            row_stride: c_out,
            col_stride: 1,
        },
        rows.len(),
        c_out,
        k * c_in,
    );
    out
}

/// Max-pools `conv_out` over groups of `pool` rows and applies ReLU, initialising every
/// element of `out`.
fn pool_relu(conv_out: &[f32], pool: usize, channels: usize, out: &mut [MaybeUninit<f32>]) {
    // The loop below visits every row of `out` only if the two lengths match.
    assert!(out.len() * pool == conv_out.len() && out.len().is_multiple_of(channels));
    for (dst, group) in out
        .chunks_exact_mut(channels)
        .zip(conv_out.chunks_exact(pool * channels))
    {
        for (d, &v) in dst.iter_mut().zip(&group[..channels]) {
            d.write(v);
        }
        // SAFETY: every element of `dst` was written just above, and `MaybeUninit<f32>` has
        // `f32`'s layout.
        let dst = unsafe { &mut *(dst as *mut [MaybeUninit<f32>] as *mut [f32]) };
        for row in group.chunks_exact(channels).skip(1) {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d = d.max(v);
            }
        }
        for d in dst.iter_mut() {
            *d = d.max(0.0);
        }
    }
}

/// Per-block summaries of an activation: `s_l[j]` (the max) feeds the LSTM, and the min
/// lets the head apply a negative gamma without seeing the activation (docs/design.md §2).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockStats {
    /// `[blocks, channels]`, the maximum over each block.
    pub max: Vec<f32>,
    /// `[blocks, channels]`, the minimum over each block.
    pub min: Vec<f32>,
    /// Channels per row.
    pub channels: usize,
}

impl BlockStats {
    /// Number of blocks summarised.
    pub fn blocks(&self) -> usize {
        self.max.len() / self.channels.max(1)
    }
}

/// Step 3, bullet 4: max and min of `a` over each block of `block_len` rows.
pub fn block_stats(a: &[f32], channels: usize, block_len: usize) -> Result<BlockStats> {
    let block = block_len * channels;
    if !a.len().is_multiple_of(block) {
        return Err(ModelError::Shape(format!(
            "{} values are not a whole number of {block_len}-row blocks of {channels} channels",
            a.len()
        )));
    }
    let blocks = a.len() / block;
    let mut max = vec![0.0; blocks * channels];
    let mut min = vec![0.0; blocks * channels];
    max.par_chunks_mut(channels)
        .zip(min.par_chunks_mut(channels))
        .zip(a.par_chunks(block))
        .for_each(|((mx, mn), rows)| {
            mx.copy_from_slice(&rows[..channels]);
            mn.copy_from_slice(&rows[..channels]);
            // Compare and select rather than `f32::max`, whose NaN rule costs two more
            // instructions per vector: this pass streams the whole activation once, and
            // post-ReLU activations hold no NaN.
            for row in rows.chunks_exact(channels).skip(1) {
                for ((x, n), &v) in mx.iter_mut().zip(mn.iter_mut()).zip(row) {
                    *x = if v > *x { v } else { *x };
                    *n = if v < *n { v } else { *n };
                }
            }
        });
    Ok(BlockStats { max, min, channels })
}

/// The recurrent state of a TFiLM LSTM, kept apart from the immutable weights.
#[derive(Debug, Clone)]
pub struct LstmState {
    /// Hidden state `h`.
    pub h: Vec<f32>,
    /// Cell state `c`.
    pub c: Vec<f32>,
}

impl LstmState {
    /// The zero initial state of docs/design.md §1.
    pub fn zero(hidden: usize) -> Self {
        Self {
            h: vec![0.0; hidden],
            c: vec![0.0; hidden],
        }
    }
}

/// `y[r] = W x[r] + b` for every row `r` of a row-major `[rows, in]` input, with `W` in
/// PyTorch's `[out, in]` layout and `out = b.len()`: one GEMM for all rows, `[rows, out]`.
fn linear_rows(x: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f32> {
    let (n_out, n_in) = (bias.len(), weight.len() / bias.len().max(1));
    let rows = x.len() / n_in.max(1);
    let mut y = Vec::with_capacity(rows * n_out);
    for _ in 0..rows {
        y.extend_from_slice(bias);
    }
    gemm_accumulate(
        &mut y,
        Operand {
            data: x,
            row_stride: n_in,
            col_stride: 1,
        },
        Operand {
            data: weight,
            row_stride: 1,
            col_stride: n_in,
        },
        rows,
        n_out,
        n_in,
    );
    y
}

/// `y = W x + b` for a row-major `W` of `[b.len(), x.len()]`.
fn affine_into(weight: &[f32], bias: &[f32], x: &[f32], y: &mut [f32]) {
    for ((yi, row), bi) in y.iter_mut().zip(weight.chunks_exact(x.len())).zip(bias) {
        *yi = dot(row, x) + bi;
    }
}

/// A dot product written with eight independent lanes so it vectorises without fast-math.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (ca, cb) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

impl LstmWeights {
    /// Step 3, bullet 5: `h_1..h_B = LSTM(s_1..s_B)` from the zero state, `[B, C]`.
    ///
    /// The input projections of all blocks are one GEMM; only the recurrence
    /// ([`lstm::run`]) is sequential.
    pub fn run(&self, block_max: &[f32]) -> Vec<f32> {
        let projected = linear_rows(block_max, &self.weight_ih, &self.bias);
        let mut h = vec![0.0; block_max.len()];
        lstm::run(&self.weight_hh, self.gate, &projected, &mut h);
        h
    }
}

/// A layer's per-block modulation: `x[t] = gamma[block(t)] * a[t] + beta[block(t)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Film {
    /// `[B, C]`.
    pub gamma: Vec<f32>,
    /// `[B, C]`; `None` under the "scale" modulation, where beta is identically zero.
    pub beta: Option<Vec<f32>>,
    /// Channels per row.
    pub channels: usize,
    /// Rows per block.
    pub block_len: usize,
}

impl Film {
    /// Step 3, bullet 6: gamma and beta from the LSTM output.
    pub fn from_lstm(
        h: Vec<f32>,
        affine: Option<&AffineWeights>,
        channels: usize,
        block_len: usize,
    ) -> Self {
        let Some(affine) = affine else {
            return Self {
                gamma: h,
                beta: None,
                channels,
                block_len,
            };
        };
        let blocks = h.len() / channels;
        // [gamma; beta] for every block at once: one GEMM, not B GEMVs.
        let both = linear_rows(&h, &affine.weight, &affine.bias);
        let mut gamma = Vec::with_capacity(h.len());
        let mut beta = Vec::with_capacity(h.len());
        for row in both.chunks_exact(2 * channels) {
            gamma.extend_from_slice(&row[..channels]);
            beta.extend_from_slice(&row[channels..]);
        }
        debug_assert_eq!(gamma.len(), blocks * channels);
        Self {
            gamma,
            beta: Some(beta),
            channels,
            block_len,
        }
    }

    /// Number of blocks covered.
    pub fn blocks(&self) -> usize {
        self.gamma.len() / self.channels.max(1)
    }

    /// Step 3, bullet 1: modulates rows `first_row ..` of an activation in place.
    pub fn apply(&self, rows: &mut [f32], first_row: usize) -> Result<()> {
        let c = self.channels;
        let n = rows.len() / c;
        if !rows.len().is_multiple_of(c) || (first_row + n).div_ceil(self.block_len) > self.blocks()
        {
            return Err(ModelError::Shape(format!(
                "cannot modulate rows {first_row}..{} with {} blocks of {} rows",
                first_row + n,
                self.blocks(),
                self.block_len
            )));
        }
        rows.par_chunks_mut(c * 256)
            .enumerate()
            .for_each(|(chunk, part)| {
                for (i, row) in part.chunks_exact_mut(c).enumerate() {
                    let block = (first_row + chunk * 256 + i) / self.block_len;
                    let gamma = &self.gamma[block * c..(block + 1) * c];
                    match &self.beta {
                        Some(beta) => {
                            let beta = &beta[block * c..(block + 1) * c];
                            for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                                *x = g * *x + b;
                            }
                        }
                        None => {
                            for (x, g) in row.iter_mut().zip(gamma) {
                                *x *= g;
                            }
                        }
                    }
                }
            });
        Ok(())
    }

    /// Step 4 from block stats alone: `max_t (gamma a + beta)` is `gamma max + beta` where
    /// `gamma >= 0` and `gamma min + beta` where `gamma < 0`, since monotone maps commute
    /// with max (docs/design.md §2). Exact, not an approximation.
    pub fn pooled_max(&self, stats: &BlockStats) -> Result<Vec<f32>> {
        let c = self.channels;
        if stats.min.len() != stats.max.len() {
            return Err(ModelError::Shape(format!(
                "block stats hold {} maxima but {} minima; they must cover the same blocks",
                stats.max.len(),
                stats.min.len()
            )));
        }
        if stats.channels != c || stats.blocks() != self.blocks() || self.blocks() == 0 {
            return Err(ModelError::Shape(format!(
                "block stats of {} blocks x {} channels do not match a modulation of {} blocks x {c}",
                stats.blocks(),
                stats.channels,
                self.blocks()
            )));
        }
        let mut g = vec![f32::NEG_INFINITY; c];
        for j in 0..self.blocks() {
            let rows = j * c..(j + 1) * c;
            let beta = self.beta.as_ref().map(|b| &b[rows.clone()]);
            for (ch, out) in g.iter_mut().enumerate() {
                let gamma = self.gamma[rows.start + ch];
                let extreme = if gamma >= 0.0 {
                    stats.max[rows.start + ch]
                } else {
                    stats.min[rows.start + ch]
                };
                let v = match beta {
                    Some(beta) => gamma * extreme + beta[ch],
                    None => gamma * extreme,
                };
                *out = out.max(v);
            }
        }
        Ok(g)
    }
}

/// Step 4 over a whole modulated activation (the `paper` plan's classifier reads it all).
pub fn global_max(x: &[f32], channels: usize) -> Vec<f32> {
    let mut g = vec![f32::NEG_INFINITY; channels];
    for row in x.chunks_exact(channels) {
        for (m, &v) in g.iter_mut().zip(row) {
            *m = m.max(v);
        }
    }
    g
}

/// Step 5: `logits = classifier(g)`.
pub fn classifier(weight: &[f32], bias: &[f32], g: &[f32]) -> Vec<f32> {
    let mut logits = vec![0.0; bias.len()];
    affine_into(weight, bias, g, &mut logits);
    logits
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}
