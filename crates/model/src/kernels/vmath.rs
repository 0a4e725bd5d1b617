//! Branch-free `f32` exp, logistic and tanh for the LSTM gates.
//!
//! libm's `expf`/`tanhf` are scalar calls, so a loop over them cannot vectorise; these are
//! straight-line arithmetic and bit moves that LLVM turns into SIMD over a slice. They are
//! the Cephes single-precision algorithms (Moshier): range reduction by `ln 2` with a
//! degree-6 polynomial for exp, and an odd polynomial near zero for tanh, where
//! `1 - 2 / (e^{2x} + 1)` would lose relative accuracy. Errors stay within a few ulp of
//! the true values (the tests below check against `f64` over a dense grid).

/// `x` is clamped to this range before `exp`: `2^n` then stays a normal `f32`, and the
/// logistic and tanh, the only users, are saturated there to far below an ulp.
const EXP_MIN: f32 = -87.0;
const EXP_MAX: f32 = 88.0;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// `ln 2` split in two so `n * LN2_HI` is exact for every `n` in range (Cody-Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 * 2^23 + 127`: adding it rounds to an integer `n` held in the low mantissa bits,
/// already carrying the exponent bias, so `2^n` is a shift with no float-to-int conversion.
const ROUND_BIASED: f32 = 12_582_912.0 + 127.0;
/// Below this magnitude tanh uses its odd polynomial.
const TANH_POLY_MAX: f32 = 0.625;

/// `e^x`, saturating outside `[-87, 88]`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let biased = x * LOG2_E + ROUND_BIASED;
    let n = biased - ROUND_BIASED;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5e-1;
    let two_n = f32::from_bits(biased.to_bits() << 23);
    (p * r * r + r + 1.0) * two_n
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Keras' piecewise-linear logistic, `clip(0.2 x + 0.5, 0, 1)`.
#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

/// `tanh x`: an odd polynomial below [`TANH_POLY_MAX`], `1 - 2 / (e^{2|x|} + 1)` above,
/// both computed and one selected so the loop stays branch-free.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let near_zero =
        ((((-5.704_988_7e-3 * s + 2.063_909e-2) * s - 5.373_971_6e-2) * s + 1.333_144_2e-1) * s
            - 3.333_328e-1)
            * s
            * x
            + x;
    let far = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < TANH_POLY_MAX { near_zero } else { far }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `f32` values from -`span` to `span` in `steps` equal steps, plus a few hand-picked ones.
    fn grid(span: f32, steps: usize) -> impl Iterator<Item = f32> {
        (0..=steps)
            .map(move |i| -span + 2.0 * span * i as f32 / steps as f32)
            .chain([0.0, -0.0, 1e-30, -1e-7, 0.624_999_9, 0.625, 20.0, -20.0])
    }

    /// Error of `got` against `want` in units of the last place of `want` as an `f32`,
    /// with an absolute floor so values near zero are judged on absolute error.
    fn ulps(got: f32, want: f64) -> f64 {
        let ulp = f64::from((want as f32).abs().max(f32::MIN_POSITIVE)) * f64::from(f32::EPSILON);
        (f64::from(got) - want).abs() / ulp.max(1e-45)
    }

    #[test]
    fn exp_is_within_two_ulp() {
        for x in grid(87.0, 400_000) {
            let e = ulps(exp(x), f64::from(x).exp());
            assert!(
                e <= 2.0,
                "exp({x}) = {} vs {}: {e} ulp",
                exp(x),
                f64::from(x).exp()
            );
        }
    }

    #[test]
    fn sigmoid_is_within_three_ulp_and_saturates() {
        for x in grid(60.0, 400_000) {
            let want = 1.0 / (1.0 + (-f64::from(x)).exp());
            let e = ulps(sigmoid(x), want);
            assert!(e <= 3.0, "sigmoid({x}) = {} vs {want}: {e} ulp", sigmoid(x));
        }
        assert_eq!(sigmoid(1e4), 1.0);
        assert!((0.0..1e-37).contains(&sigmoid(-1e4)));
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_three_ulp_and_odd() {
        for x in grid(12.0, 400_000) {
            let want = f64::from(x).tanh();
            let e = ulps(tanh(x), want);
            assert!(e <= 3.0, "tanh({x}) = {} vs {want}: {e} ulp", tanh(x));
            assert_eq!(tanh(-x), -tanh(x), "tanh is odd at {x}");
        }
        assert_eq!(tanh(1e4), 1.0);
        assert_eq!(tanh(-1e4), -1.0);
        assert!(tanh(f32::NAN).is_nan());
    }

    #[test]
    fn hard_sigmoid_clips() {
        assert_eq!(hard_sigmoid(-3.0), 0.0);
        assert_eq!(hard_sigmoid(0.0), 0.5);
        assert_eq!(hard_sigmoid(1.0), 0.7);
        assert_eq!(hard_sigmoid(3.0), 1.0);
    }
}
