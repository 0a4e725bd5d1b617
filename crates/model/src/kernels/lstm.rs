//! The TFiLM LSTM's serial recurrence: per block, `gates += W_hh h` and the cell update.
//!
//! This is the one part of the forward pass that cannot be split or batched (block `j`
//! needs `h_{j-1}`), so it runs at the speed of one core: a `4C x C` GEMV streamed from
//! cache plus `5C` transcendental functions per block. Two choices make it fast:
//!
//! - [`RecurrentWeights`] stores `W_hh` once, at load, in panels of [`PANEL`] gate rows laid
//!   out column by column. The GEMV then reads the weights as one contiguous stream into
//!   `PANEL` independent accumulators, with no horizontal sums and no packing per call.
//! - The cell update uses the branch-free functions of [`super::vmath`], so it vectorises.
//!
//! Both are plain Rust that LLVM vectorises; on x86_64 the whole recurrence is compiled
//! again with AVX-512 and with AVX2 and FMA enabled, the best picked at run time, and every
//! other target runs the portable build.

use crate::config::GateActivation;

use super::LstmState;
use super::vmath;

/// Gate rows per panel of [`RecurrentWeights`]: 64 accumulators are 8 AVX2 (or 4 AVX-512)
/// registers, enough independent chains to cover the FMA latency and few enough to stay in
/// registers.
pub const PANEL: usize = 64;

/// `W_hh` (PyTorch `[4C, C]`, gates i, f, g, o) in the GEMV's layout.
///
/// `panels[p][c][r]` holds `W_hh[p * PANEL + r, c]`; rows past `4C` are zero, so every
/// panel is whole.
#[derive(Debug, Clone)]
pub struct RecurrentWeights {
    hidden: usize,
    panels: Vec<f32>,
}

impl RecurrentWeights {
    /// Packs a row-major `[4 * hidden, hidden]` matrix.
    pub fn pack(weight_hh: &[f32], hidden: usize) -> Self {
        assert_eq!(weight_hh.len(), 4 * hidden * hidden, "W_hh is [4C, C]");
        let rows = padded_rows(hidden);
        let mut panels = vec![0.0; rows * hidden];
        for (r, row) in weight_hh.chunks_exact(hidden.max(1)).enumerate() {
            let (p, lane) = (r / PANEL, r % PANEL);
            for (c, &w) in row.iter().enumerate() {
                panels[(p * hidden + c) * PANEL + lane] = w;
            }
        }
        Self { hidden, panels }
    }

    /// The hidden size `C`.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Gate rows including the zero padding: the length a `gates` buffer must have.
    pub fn padded_rows(&self) -> usize {
        padded_rows(self.hidden)
    }

    /// `gates += W_hh h`: the recurrence's GEMV on its own, for benchmarks.
    ///
    /// # Panics
    /// If `h` is not `C` long or `gates` not [`Self::padded_rows`] long.
    pub fn gemv_accumulate(&self, h: &[f32], gates: &mut [f32]) {
        self.check_shapes(h, gates);
        gemv_best(&self.panels, h, gates)
    }

    fn check_shapes(&self, h: &[f32], gates: &[f32]) {
        assert_eq!(h.len(), self.hidden, "h has C values");
        assert_eq!(
            gates.len(),
            self.padded_rows(),
            "gates has the padded 4C rows"
        );
    }
}

fn padded_rows(hidden: usize) -> usize {
    (4 * hidden).div_ceil(PANEL) * PANEL
}

/// Defines `$name` to call `$generic::<FMA>` compiled for the best instruction set this
/// CPU has: AVX-512 on x86_64 when present (the GEMV streams `W_hh` from L2 in half the
/// instructions), else AVX2 with FMA, else the portable build without fused multiply-adds
/// (a software `fma` would be far slower than a multiply and an add). The two FMA builds do
/// the same operations in the same order in every lane, so they agree bit for bit.
macro_rules! multiversion {
    (fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $generic:ident) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) {
                    $generic::<true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2_fma($($arg: $ty),*) {
                    $generic::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU was just checked to support AVX-512F, which implies
                    // AVX2 and FMA.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just checked to support AVX2 and FMA.
                    return unsafe { avx2_fma($($arg),*) };
                }
            }
            $generic::<false>($($arg),*)
        }
    };
}

multiversion!(fn gemv_best(panels: &[f32], h: &[f32], gates: &mut [f32]) => gemv);
multiversion!(fn cell_update_best(kind: GateActivation, gates: &[f32], state: &mut LstmState) => cell_update_with);
multiversion!(fn recurrence_best(weights: &RecurrentWeights, kind: GateActivation, projected: &[f32], h_out: &mut [f32]) => recurrence);

/// `a * b + c`, fused when `FMA` (only instantiated where the CPU has it).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[inline(always)]
fn gemv<const FMA: bool>(panels: &[f32], h: &[f32], gates: &mut [f32]) {
    let c = h.len();
    if c == 0 {
        return;
    }
    for (panel, out) in panels
        .chunks_exact(c * PANEL)
        .zip(gates.chunks_exact_mut(PANEL))
    {
        let mut acc = [0.0f32; PANEL];
        acc.copy_from_slice(out);
        for (column, &hc) in panel.chunks_exact(PANEL).zip(h) {
            for (a, &w) in acc.iter_mut().zip(column) {
                *a = madd::<FMA>(w, hc, *a);
            }
        }
        out.copy_from_slice(&acc);
    }
}

/// The cell update from full gate pre-activations (PyTorch order i, f, g, o):
/// `c = f c + i g`, `h = o tanh(c)`.
#[inline(always)]
fn cell_update<const FMA: bool>(
    gate: impl Fn(f32) -> f32 + Copy,
    gates: &[f32],
    state: &mut LstmState,
) {
    let c = state.h.len();
    let (i, rest) = gates.split_at(c);
    let (f, rest) = rest.split_at(c);
    let (g, o) = rest.split_at(c);
    let inputs = i.iter().zip(f).zip(g.iter().zip(o));
    for ((h, cell), ((&i, &f), (&g, &o))) in state.h.iter_mut().zip(&mut state.c).zip(inputs) {
        *cell = madd::<FMA>(gate(f), *cell, gate(i) * vmath::tanh(g));
        *h = gate(o) * vmath::tanh(*cell);
    }
}

#[inline(always)]
fn cell_update_with<const FMA: bool>(kind: GateActivation, gates: &[f32], state: &mut LstmState) {
    match kind {
        GateActivation::Sigmoid => cell_update::<FMA>(vmath::sigmoid, gates, state),
        GateActivation::HardSigmoid => cell_update::<FMA>(vmath::hard_sigmoid, gates, state),
    }
}

/// One block's cell update from `gates` (`4C` pre-activations or more): the
/// transcendental half of a step on its own, for benchmarks.
pub fn cell_step(kind: GateActivation, gates: &[f32], state: &mut LstmState) {
    assert!(gates.len() >= 4 * state.h.len() && state.c.len() == state.h.len());
    cell_update_best(kind, gates, state)
}

#[inline(always)]
fn recurrence<const FMA: bool>(
    weights: &RecurrentWeights,
    kind: GateActivation,
    projected: &[f32],
    h_out: &mut [f32],
) {
    let c = weights.hidden;
    let mut state = LstmState::zero(c);
    let mut gates = vec![0.0; weights.padded_rows()];
    for (input, h) in projected.chunks_exact(4 * c).zip(h_out.chunks_exact_mut(c)) {
        gates[..4 * c].copy_from_slice(input);
        gemv::<FMA>(&weights.panels, &state.h, &mut gates);
        cell_update_with::<FMA>(kind, &gates, &mut state);
        h.copy_from_slice(&state.h);
    }
}

/// `h_1..h_B` from the zero state, given each block's input projection `W_ih s_j + b`
/// (`projected`, `[B, 4C]`); writes `[B, C]` into `h_out`.
pub fn run(weights: &RecurrentWeights, kind: GateActivation, projected: &[f32], h_out: &mut [f32]) {
    let c = weights.hidden;
    assert!(c > 0 && projected.len() / (4 * c) == h_out.len() / c);
    recurrence_best(weights, kind, projected, h_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `W x` in f64 from the PyTorch layout.
    fn matvec(w: &[f32], x: &[f32]) -> Vec<f64> {
        w.chunks_exact(x.len())
            .map(|row| {
                row.iter()
                    .zip(x)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn packed_gemv_equals_the_pytorch_layout_product() {
        // Hidden sizes that leave a partial panel and that fill panels exactly.
        for hidden in [1, 5, 16, 24] {
            let w: Vec<f32> = (0..4 * hidden * hidden)
                .map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0)
                .collect();
            let h: Vec<f32> = (0..hidden).map(|i| (i as f32 * 0.37).sin()).collect();
            let packed = RecurrentWeights::pack(&w, hidden);
            let mut gates = vec![0.5; packed.padded_rows()];
            packed.gemv_accumulate(&h, &mut gates);
            let want = matvec(&w, &h);
            for (r, (&got, want)) in gates.iter().zip(&want).enumerate() {
                assert!(
                    (f64::from(got) - 0.5 - want).abs() < 1e-5,
                    "C={hidden} row {r}"
                );
            }
            assert!(
                gates[4 * hidden..].iter().all(|&g| g == 0.5),
                "padding rows stay zero"
            );
        }
    }

    #[test]
    fn recurrence_follows_the_lstm_equations() {
        let hidden = 3;
        let w: Vec<f32> = (0..4 * hidden * hidden)
            .map(|i| (i as f32 * 0.61).cos() * 0.9)
            .collect();
        let projected: Vec<f32> = (0..2 * 4 * hidden)
            .map(|i| (i as f32 * 0.23).sin())
            .collect();
        let packed = RecurrentWeights::pack(&w, hidden);
        let mut h_out = vec![0.0; 2 * hidden];
        run(&packed, GateActivation::Sigmoid, &projected, &mut h_out);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let (mut h, mut c) = (vec![0.0f64; hidden], vec![0.0f64; hidden]);
        for (block, input) in projected.chunks_exact(4 * hidden).enumerate() {
            let h32: Vec<f32> = h.iter().map(|&v| v as f32).collect();
            let z: Vec<f64> = matvec(&w, &h32)
                .iter()
                .zip(input)
                .map(|(r, &x)| r + f64::from(x))
                .collect();
            for j in 0..hidden {
                let (i, f) = (sigmoid(z[j]), sigmoid(z[hidden + j]));
                let (g, o) = (z[2 * hidden + j].tanh(), sigmoid(z[3 * hidden + j]));
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
                let got = f64::from(h_out[block * hidden + j]);
                assert!(
                    (got - h[j]).abs() < 1e-6,
                    "block {block} unit {j}: {got} vs {}",
                    h[j]
                );
            }
        }
    }
}
