//! How much memory a forward pass, or one conv stage of it, holds at its peak, from the
//! config and the lengths alone: what a server admits queries by before running them
//! (docs/serve.md, "Memory"), and what the planner checks a function's memory against.

use crate::config::{ModelConfig, Modulation};
use crate::kernels::CONV_TILE_ROWS;

/// Bytes of one `f32`.
const F32: u64 = 4;

/// What a forward pass holds that does not grow with the query: GEMM packing buffers, the
/// LSTM's per-step gates and state, the pooled features and logits of the head, and the
/// allocator's rounding of the large buffers.
pub const FORWARD_OVERHEAD_BYTES: u64 = 8 << 20;

impl ModelConfig {
    /// An upper bound on the bytes the monolithic forward ([`crate::TfilmModel::forward`])
    /// of an `n_bytes` query allocates at its peak, beyond the loaded weights: the figure a
    /// server admits the query by, so a burst of long queries cannot exhaust its memory.
    ///
    /// The forward keeps one layer's input and output alive at a time, so the peak is the
    /// largest of its phases. With `T` the padded length, `T_l`, `C_l` and `B_l = T_l / b_l`
    /// layer `l`'s rows, channels and blocks, and every activation `f32`:
    ///
    /// - **embedding**: the token ids (`2 T` bytes) and the embedded input `[T, E]`;
    /// - **layer `l`**: its input `[T_{l-1}, C_{l-1}]` (modulated in place), its output
    ///   `[T_l, C_l]`, its block max and min (`2 B_l C_l`), the TFiLM's transient buffers
    ///   (the LSTM's input projections `[B_l, 4 C_l]` and outputs `[B_l, C_l]`, or,
    ///   right after, the FiLM GEMM's `[B_l, 2 C_l]` with gamma and beta copied out of
    ///   it: `5 B_l C_l` either way), and the previous layer's block stats and modulation
    ///   (`2 B_{l-1} C_{l-1}` plus gamma, and beta under the affine modulation), which
    ///   live until this layer's replace them;
    /// - **conv tiles**: one `[CONV_TILE_ROWS, C_l]` result and its input window per thread
    ///   of the current rayon pool, for the widest layer;
    /// - [`FORWARD_OVERHEAD_BYTES`] for what does not scale with the length.
    ///
    /// The bound is checked against the peak resident memory of real forwards in
    /// docs/results/forward-memory.txt.
    pub fn forward_peak_bytes(&self, n_bytes: usize) -> u64 {
        let padded = self.padded_len(n_bytes) as u64;
        let embedding = 2 * padded + F32 * padded * self.embed_dim as u64;
        let film_arrays = match self.modulation {
            Modulation::Scale => 1,
            Modulation::Affine => 2,
        };
        let mut peak = embedding;
        let mut input_rows = padded;
        let mut previous_summary = 0;
        let mut widest_tile = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let (c_in, c_out) = (self.in_channels(l) as u64, layer.channels as u64);
            let rows = input_rows / layer.pool as u64;
            let block_cells = rows / layer.block_len as u64 * c_out;
            let held =
                F32 * (input_rows * c_in + rows * c_out + (2 + 5) * block_cells) + previous_summary;
            peak = peak.max(held);
            previous_summary = F32 * (2 + film_arrays) * block_cells;
            let tile_rows = CONV_TILE_ROWS as u64;
            let window_rows = tile_rows + layer.kernel as u64;
            widest_tile = widest_tile.max(F32 * (tile_rows * c_out + window_rows * c_in));
            input_rows = rows;
        }
        peak + widest_tile * rayon::current_num_threads() as u64 + FORWARD_OVERHEAD_BYTES
    }

    /// What a conv stage function of layer `layer` computing `out_rows` pooled rows holds
    /// at its peak: the input rows it reads (its rows widened by the kernel's reach) and
    /// its output, each twice (as read from or written to the store, and as the kernels hold
    /// them: modulated, or embedded for the first layer), and four conv tiles. The planner
    /// checks every conv stage's estimate against the functions' memory setting
    /// (`--memory-mb`), and splits a layer further or refuses the plan, naming the stage,
    /// where it does not fit.
    pub fn conv_stage_peak_bytes(&self, layer: usize, out_rows: usize) -> u64 {
        let cfg = &self.layers[layer];
        let in_rows = (out_rows * cfg.pool + cfg.kernel) as u64;
        let in_bytes = F32 * in_rows * self.in_channels(layer) as u64;
        let out_bytes = F32 * out_rows as u64 * cfg.channels as u64;
        let tile = F32 * CONV_TILE_ROWS as u64 * cfg.channels as u64;
        2 * in_bytes + 2 * out_bytes + 4 * tile
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{BYTE_VOCAB, FORMAT, GateActivation, parse_layers};

    use super::*;

    fn config(layers: &str, modulation: Modulation) -> ModelConfig {
        ModelConfig {
            format: FORMAT.into(),
            tokenizer: "bytes".into(),
            vocab_size: BYTE_VOCAB,
            embed_dim: 32,
            layers: parse_layers(layers).unwrap(),
            modulation,
            gate_activation: GateActivation::Sigmoid,
            labels: vec!["a".into(), "b".into()],
            max_len: 1 << 20,
        }
    }

    /// The shipped langid shape at 1 MiB, worked by hand: the layer phase dominates.
    #[test]
    fn one_layer_at_one_mebibyte_is_its_input_output_and_block_buffers() {
        let c = config("256:5:2:16", Modulation::Affine);
        let (t, rows) = (1u64 << 20, 1u64 << 19);
        let block_cells = rows / 16 * 256;
        let layer = 4 * (t * 32 + rows * 256 + 7 * block_cells);
        let tiles = 4 * (512 * 256 + 517 * 32) * rayon::current_num_threads() as u64;
        assert_eq!(
            c.forward_peak_bytes(1 << 20),
            layer + tiles + FORWARD_OVERHEAD_BYTES
        );
        // 864 MiB of activations.
        assert_eq!(layer, 864 << 20);
    }

    #[test]
    fn grows_with_the_padded_length_and_counts_the_previous_modulation() {
        let affine = config("64:3:2:4,64:3:1:4", Modulation::Affine);
        let scale = config("64:3:2:4,64:3:1:4", Modulation::Scale);
        assert!(affine.forward_peak_bytes(1 << 16) < affine.forward_peak_bytes(1 << 18));
        // Lengths that pad to the same T hold the same buffers.
        assert_eq!(
            affine.forward_peak_bytes(1),
            affine.forward_peak_bytes(affine.alignment())
        );
        // Beta is one more [B, C] array held into the second layer.
        let blocks = (1u64 << 16) / 2 / 4;
        assert_eq!(
            affine.forward_peak_bytes(1 << 16) - scale.forward_peak_bytes(1 << 16),
            4 * blocks * 64
        );
    }
}
