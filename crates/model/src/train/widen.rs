//! Starting a training run from a narrower trained model ("net2net"-style widening).
//!
//! Training a wide model from scratch costs many epochs on a small machine; a trained
//! narrower model of the same shape already knows most of what the wide one needs. Each
//! tensor of the wide model keeps the narrow model's values in its leading block, its new
//! output units keep their fresh initialisation, and every weight from a new input unit
//! into an old output unit starts at zero. The wide model therefore computes exactly the
//! narrow model's logits at step 0, and the new channels join in as training moves their
//! classifier weights off zero.
//!
//! A convolution kernel may grow too: the old taps sit where the wider "same" padding
//! puts them (shifted by the growth of the left padding) and the new taps start at zero,
//! so each output row still reads exactly the input rows it read before.

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};

/// Checks that `wide` can start from `narrow`: the same stack, labels and maths, with no
/// width smaller. Equal configs pass (plain fine-tuning or resuming).
pub fn check_widenable(narrow: &ModelConfig, wide: &ModelConfig) -> Result<()> {
    let refuse = |what: String| {
        Err(ModelError::Config(format!(
            "cannot start from the given model: {what}"
        )))
    };
    if narrow.labels != wide.labels {
        return refuse(format!(
            "its labels {:?} differ from the training labels {:?}",
            narrow.labels, wide.labels
        ));
    }
    if narrow.modulation != wide.modulation || narrow.gate_activation != wide.gate_activation {
        return refuse("its modulation or gate activation differs".into());
    }
    if narrow.layers.len() != wide.layers.len() {
        return refuse(format!(
            "it has {} layers, the new model {}",
            narrow.layers.len(),
            wide.layers.len()
        ));
    }
    if narrow.embed_dim > wide.embed_dim {
        return refuse(format!(
            "its embedding width {} is larger than {}",
            narrow.embed_dim, wide.embed_dim
        ));
    }
    for (i, (n, w)) in narrow.layers.iter().zip(&wide.layers).enumerate() {
        if (n.pool, n.block_len) != (w.pool, w.block_len) || n.kernel > w.kernel {
            return refuse(format!(
                "layer {i} differs in pool or block length, or has a wider kernel \
                 ({n:?} vs {w:?})"
            ));
        }
        if n.channels > w.channels {
            return refuse(format!(
                "layer {i} has {} channels, more than the new model's {}",
                n.channels, w.channels
            ));
        }
    }
    Ok(())
}

/// How many independent output blocks dimension 0 of a tensor stacks: the LSTM's four
/// gates and the affine map's gamma and beta each widen separately.
pub fn output_groups(name: &str) -> usize {
    if name.contains(".lstm.") {
        4
    } else if name.contains(".affine.") {
        2
    } else {
        1
    }
}

/// Where each inner dimension of the narrow tensor starts inside the wide one: zero
/// except a convolution's kernel axis, which shifts by the growth of the left padding.
pub fn inner_offsets(name: &str, narrow_shape: &[usize], wide_shape: &[usize]) -> Vec<usize> {
    let mut offsets = vec![0; narrow_shape.len().saturating_sub(1)];
    if name.ends_with(".conv.weight")
        && let (Some(&k_old), Some(&k_new), Some(last)) =
            (narrow_shape.last(), wide_shape.last(), offsets.last_mut())
    {
        *last = (k_new - 1) / 2 - (k_old - 1) / 2;
    }
    offsets
}

/// Embeds `narrow` (shape `narrow_shape`) into `fresh` (shape `wide_shape`, the wide
/// tensor's initial values) with each inner dimension shifted by `offsets`, as the
/// module documentation describes.
pub fn widen_tensor(
    narrow: &[f32],
    narrow_shape: &[usize],
    mut fresh: Vec<f32>,
    wide_shape: &[usize],
    groups: usize,
    offsets: &[usize],
) -> Vec<f32> {
    let (narrow_out, wide_out) = (narrow_shape[0] / groups, wide_shape[0] / groups);
    let narrow_inner: usize = narrow_shape[1..].iter().product();
    let wide_inner: usize = wide_shape[1..].iter().product();
    for (row, chunk) in fresh.chunks_mut(wide_inner.max(1)).enumerate() {
        let (group, unit) = (row / wide_out, row % wide_out);
        if unit >= narrow_out {
            continue; // a new output unit keeps its fresh values
        }
        let source_row = &narrow[(group * narrow_out + unit) * narrow_inner..][..narrow_inner];
        for (flat, value) in chunk.iter_mut().enumerate() {
            *value = narrow_index(flat, &narrow_shape[1..], &wide_shape[1..], offsets)
                .map_or(0.0, |i| source_row[i]);
        }
    }
    fresh
}

/// The flat index in the narrow inner shape of wide inner position `flat`, or `None` when
/// any coordinate lies outside the narrow shape (a new input unit or kernel tap).
fn narrow_index(
    mut flat: usize,
    narrow_dims: &[usize],
    wide_dims: &[usize],
    offsets: &[usize],
) -> Option<usize> {
    let mut index = 0;
    let mut stride = 1;
    for ((&n, &w), &offset) in narrow_dims.iter().zip(wide_dims).zip(offsets).rev() {
        let coordinate = (flat % w).checked_sub(offset)?;
        flat /= w;
        if coordinate >= n {
            return None;
        }
        index += coordinate * stride;
        stride *= n;
    }
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_keeps_old_block_zeroes_new_inputs_and_keeps_new_outputs() {
        // 2 groups of 1 unit x 2 inputs -> 2 groups of 2 units x 3 inputs.
        let narrow = [1.0, 2.0, 3.0, 4.0];
        let fresh = vec![9.0; 12];
        let wide = widen_tensor(&narrow, &[2, 2], fresh, &[4, 3], 2, &[0]);
        assert_eq!(
            wide,
            vec![
                1.0, 2.0, 0.0, // group 0, old unit: old inputs copied, new input zero
                9.0, 9.0, 9.0, // group 0, new unit: fresh
                3.0, 4.0, 0.0, // group 1, old unit
                9.0, 9.0, 9.0, // group 1, new unit
            ]
        );
    }

    #[test]
    fn widening_a_three_dimensional_tensor_maps_inner_coordinates() {
        // conv [C_out 1 -> 2, C_in 2 -> 3, k 2]
        let narrow = [1.0, 2.0, 3.0, 4.0];
        let wide = widen_tensor(&narrow, &[1, 2, 2], vec![9.0; 12], &[2, 3, 2], 1, &[0, 0]);
        assert_eq!(&wide[..6], &[1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        assert_eq!(&wide[6..], &[9.0; 6]);
    }

    #[test]
    fn a_grown_kernel_keeps_its_taps_centred() {
        // k 2 -> 5: left padding 0 -> 2, so the old taps move to positions 2 and 3.
        let shape_old = [1, 1, 2];
        let shape_new = [1, 1, 5];
        let offsets = inner_offsets("layers.0.conv.weight", &shape_old, &shape_new);
        assert_eq!(offsets, vec![0, 2]);
        let wide = widen_tensor(
            &[1.0, 2.0],
            &shape_old,
            vec![9.0; 5],
            &shape_new,
            1,
            &offsets,
        );
        assert_eq!(wide, vec![0.0, 0.0, 1.0, 2.0, 0.0]);
    }
}
