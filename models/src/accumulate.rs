//! Sequential evidence: many mildly unusual events in a short time are one strong signal.
//!
//! Low-and-slow attacks (a trickle of encoded chunks, a handful of new destinations) never produce a
//! single damning event. An [`EvidenceAccumulator`] sums, with exponential decay in event time, the
//! excess surprise `max(0, -ln p - κ)` of each event's p-value, and counts the events it has seen with
//! the same decay. Under the null each event contributes with some probability `q` (a "jump"), of a
//! roughly exponential size with mean `μ`: the sum over `n` recent events is compound Poisson
//! (`N ~ Poisson(q n)` exponential jumps), whose tail has a closed form as a Poisson mixture of gamma
//! tails, computed here in log space. For perfectly uniform p-values `q = e^-κ` and `μ = 1`; real
//! per-event p-values are far from uniform (most are exactly 1), so a [`JumpLaw`] learns `q` and `μ`
//! from the stream, starting from the uniform law as its prior, with `q` floored so that a class
//! that never jumped does not make the first two jumps look impossible.

use serde::{Deserialize, Serialize};
/// Allowance: only events with p below `e^-KAPPA` (0.1) add evidence.
pub const KAPPA: f64 = std::f64::consts::LN_10;

/// Decayed excess surprise and event count, 16 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvidenceAccumulator {
    evidence: f32,
    events: f32,
    ts_ms: i64,
}

impl EvidenceAccumulator {
    /// Decays to `ts_ms` (never backwards) and adds one event with p-value `p`.
    pub fn observe(&mut self, p: f64, ts_ms: i64, half_life_ms: i64) {
        self.decay_to(ts_ms, half_life_ms);
        self.evidence += Self::excess(p) as f32;
        self.events += 1.0;
    }

    fn decay_to(&mut self, ts_ms: i64, half_life_ms: i64) {
        if ts_ms > self.ts_ms {
            if self.events > 0.0 {
                let d = (-((ts_ms - self.ts_ms) as f64) / half_life_ms.max(1) as f64 * std::f64::consts::LN_2).exp();
                self.evidence *= d as f32;
                self.events *= d as f32;
            }
            self.ts_ms = ts_ms;
        }
    }

    /// The evidence and decayed event count that would stand after adding an event with p-value `p`
    /// at `ts_ms`, without changing the accumulator.
    pub fn peek(&self, p: f64, ts_ms: i64, half_life_ms: i64) -> (f64, f64) {
        let mut a = *self;
        a.observe(p, ts_ms, half_life_ms);
        (a.evidence as f64, a.events as f64)
    }

    /// Current decayed evidence (nats of excess surprise).
    pub fn evidence(&self) -> f64 {
        self.evidence as f64
    }

    /// Current decayed event count.
    pub fn events(&self) -> f64 {
        self.events as f64
    }

    /// `P(S >= evidence)` for the compound Poisson null of uniform p-values (`λ = e^-κ · events`).
    pub fn p_value(&self) -> f64 {
        compound_poisson_sf(self.evidence as f64, (-KAPPA).exp() * self.events as f64)
    }

    /// The excess surprise an event with p-value `p` adds: `max(0, -ln p - κ)`.
    ///
    /// Zero for every `p >= e^-κ = 0.1`, which is most events (most p-values are exactly 1); the
    /// logarithm is taken only below 0.2, far enough from 0.1 that the shortcut cannot differ from the
    /// formula by rounding (for `p >= 0.2`, `-ln p - κ <= -0.69`, and `max` gives exactly `0.0`).
    #[inline]
    pub fn excess(p: f64) -> f64 {
        let p = crate::clamp_p(p);
        if p >= 0.2 {
            return 0.0;
        }
        (-p.ln() - KAPPA).max(0.0)
    }
}

/// `N` evidence accumulators sharing one clock: one exponential per event decays them all.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceSet<const N: usize> {
    ts_ms: i64,
    #[serde(with = "crate::arrays")]
    evidence: [f32; N],
    #[serde(with = "crate::arrays")]
    events: [f32; N],
}

impl<const N: usize> Default for EvidenceSet<N> {
    fn default() -> Self {
        EvidenceSet { ts_ms: i64::MIN, evidence: [0.0; N], events: [0.0; N] }
    }
}

impl<const N: usize> EvidenceSet<N> {
    /// The decay factor from the set's clock to `ts_ms` (1 when time does not advance).
    #[inline]
    pub fn factor(&self, ts_ms: i64, half_life_ms: i64) -> f64 {
        if self.ts_ms == i64::MIN || ts_ms <= self.ts_ms {
            return 1.0;
        }
        (-((ts_ms - self.ts_ms) as f64) / half_life_ms.max(1) as f64 * std::f64::consts::LN_2).exp()
    }

    /// Evidence and event count of accumulator `i` after decaying by `factor` and adding an event with
    /// p-value `p`, without changing the set.
    #[inline]
    pub fn peek(&self, i: usize, p: f64, factor: f64) -> (f64, f64) {
        (self.evidence[i] as f64 * factor + EvidenceAccumulator::excess(p), self.events[i] as f64 * factor + 1.0)
    }

    /// Moves the clock to `ts_ms` (never backwards), decaying every accumulator.
    pub fn advance(&mut self, ts_ms: i64, half_life_ms: i64) {
        self.advance_by(ts_ms, self.factor(ts_ms, half_life_ms));
    }

    /// [`EvidenceSet::advance`] with the decay factor already computed by [`EvidenceSet::factor`] for
    /// the same `ts_ms` (the scorer computes it first; one exponential per event, not two).
    pub fn advance_by(&mut self, ts_ms: i64, factor: f64) {
        let f = factor as f32;
        if f < 1.0 {
            for (e, n) in self.evidence.iter_mut().zip(self.events.iter_mut()) {
                *e *= f;
                *n *= f;
            }
        }
        self.ts_ms = self.ts_ms.max(ts_ms);
    }

    /// Adds an event with p-value `p` to accumulator `i` (after [`EvidenceSet::advance`]).
    #[inline]
    pub fn add(&mut self, i: usize, p: f64) {
        self.evidence[i] += EvidenceAccumulator::excess(p) as f32;
        self.events[i] += 1.0;
    }

    /// Empties accumulator `i` (its evidence was used).
    #[inline]
    pub fn reset(&mut self, i: usize) {
        self.evidence[i] = 0.0;
        self.events[i] = 0.0;
    }
}

/// Smallest jump rate a [`JumpLaw`] assumes.
pub const MIN_JUMP_RATE: f64 = 0.002;

/// The learned null law of evidence jumps: how often events contribute, and how much (8 bytes + 8).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct JumpLaw {
    rate: f32,
    n: f32,
    mean: f32,
    jumps: f32,
}

impl Default for JumpLaw {
    /// The law of uniform p-values, worth ten observations.
    fn default() -> Self {
        JumpLaw { rate: (-KAPPA).exp() as f32, n: 10.0, mean: 1.0, jumps: 1.0 }
    }
}

impl JumpLaw {
    /// Learns one event's excess surprise (0: no jump); memory saturates at `max_n` events.
    pub fn observe(&mut self, excess: f64, weight: f64, max_n: f32) {
        if weight <= 0.0 || !excess.is_finite() {
            return;
        }
        let w = weight as f32;
        self.n = (self.n + w).min(max_n);
        let jumped = excess > 0.0;
        self.rate += w / self.n * ((jumped as u8 as f32) - self.rate);
        if jumped {
            self.jumps = (self.jumps + w).min(max_n);
            self.mean += w / self.jumps * (excess as f32 - self.mean);
        }
    }

    /// Events learned (decayed, including the prior's ten).
    pub fn observations(&self) -> f32 {
        self.n
    }

    /// Probability that an event jumps.
    pub fn rate(&self) -> f64 {
        self.rate as f64
    }

    /// Mean jump size (nats).
    pub fn mean(&self) -> f64 {
        self.mean as f64
    }

    /// `P(S >= evidence)` over `events` recent events: compound Poisson with `λ = q · events` and
    /// exponential jumps of mean `μ`. Evidence under two mean jumps is no evidence (1, not computed).
    pub fn p_value(&self, evidence: f64, events: f64) -> f64 {
        let mu = (self.mean as f64).max(0.5);
        let a = evidence / mu;
        if a < 2.0 {
            return 1.0;
        }
        compound_poisson_sf(a, (self.rate as f64).max(MIN_JUMP_RATE) * events.max(1.0))
    }
}

fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Above this Chernoff bound the tail is not worth its exact computation: the bound is returned.
const EXACT_BELOW: f64 = 0.01;

/// `P(S >= a)` where `S` is a sum of `N ~ Poisson(lambda)` independent Exp(1) variables.
///
/// When the Chernoff bound `exp(-(√a - √λ)²)` is above 0.01 the bound itself is returned (a valid,
/// conservative p-value for evidence that does not matter); below it the tail is computed exactly.
pub fn compound_poisson_sf(a: f64, lambda: f64) -> f64 {
    if a <= 0.0 || !a.is_finite() {
        return 1.0;
    }
    if lambda <= 0.0 {
        return crate::P_FLOOR;
    }
    if a <= lambda {
        return 1.0;
    }
    let d = a.sqrt() - lambda.sqrt();
    let bound = (-d * d).exp();
    if bound > EXACT_BELOW {
        return bound;
    }
    let (ln_a, ln_l) = (a.ln(), lambda.ln());
    // log of P(N = j), and log of the gamma tail Q(j, a) = e^-a Σ_{i<j} a^i / i!.
    let mut log_pj = -lambda;
    let mut log_term_i = -a; // log(e^-a a^i / i!) for i = 0
    let mut log_q = f64::NEG_INFINITY;
    let mut total = f64::NEG_INFINITY;
    let max_j = (lambda + a + 12.0 * (lambda + a).sqrt() + 40.0) as u32;
    for j in 1..=max_j {
        log_pj += ln_l - (j as f64).ln();
        log_q = log_add(log_q, log_term_i);
        log_term_i += ln_a - (j as f64).ln();
        total = log_add(total, log_pj + log_q);
    }
    crate::clamp_p(total.exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut in [`EvidenceAccumulator::excess`] gives the formula's bits for every p-value.
    #[test]
    fn excess_shortcut_is_the_formula() {
        let formula = |p: f64| (-crate::clamp_p(p).ln() - KAPPA).max(0.0);
        let mut ps =
            vec![f64::NAN, f64::INFINITY, -1.0, 0.0, 1e-300, 0.0999, 0.1, 0.1000001, 0.19999, 0.2, 0.5, 1.0, 2.0];
        ps.extend((0..=100_000).map(|i| i as f64 / 100_000.0));
        for p in ps {
            assert_eq!(EvidenceAccumulator::excess(p).to_bits(), formula(p).to_bits(), "p = {p}");
        }
    }

    #[test]
    fn compound_poisson_matches_simple_cases() {
        // One jump at most matters when lambda is tiny: P ≈ lambda e^-a.
        let p = compound_poisson_sf(8.0, 1e-4);
        assert!((p / (1e-4 * (-8.0f64).exp()) - 1.0).abs() < 1e-2, "{p}");
        // Monotone in a and in lambda.
        assert!(compound_poisson_sf(5.0, 1.0) < compound_poisson_sf(4.0, 1.0));
        assert!(compound_poisson_sf(5.0, 2.0) > compound_poisson_sf(5.0, 1.0));
        assert_eq!(compound_poisson_sf(0.0, 1.0), 1.0);
    }

    #[test]
    fn compound_poisson_matches_a_direct_mixture() {
        // lambda = 2, a = 20: Σ_j Pois(j; 2) Q(j, 20), summed directly.
        let (lambda, a) = (2.0f64, 20.0f64);
        let mut direct = 0.0;
        let mut pj = (-lambda).exp();
        for j in 1..60 {
            pj *= lambda / j as f64;
            let mut q = 0.0;
            let mut t = (-a).exp();
            for i in 0..j {
                if i > 0 {
                    t *= a / i as f64;
                }
                q += t;
            }
            direct += pj * q;
        }
        let got = compound_poisson_sf(a, lambda);
        assert!((got - direct).abs() < 1e-12, "{got} vs {direct}");
    }

    #[test]
    fn the_chernoff_shortcut_bounds_the_exact_tail() {
        for (a, l) in [(3.0, 1.0), (5.0, 2.0), (4.0, 0.5), (10.0, 6.0)] {
            let d: f64 = f64::sqrt(a) - f64::sqrt(l);
            let bound = (-d * d).exp();
            let got = compound_poisson_sf(a, l);
            assert!(got <= 1.0 && got > 0.0);
            if bound > EXACT_BELOW {
                assert_eq!(got, bound);
            }
        }
    }

    #[test]
    fn a_trickle_of_moderate_evidence_becomes_strong() {
        let mut acc = EvidenceAccumulator::default();
        let single = {
            let mut a = acc;
            a.observe(1e-3, 0, 600_000);
            a.p_value()
        };
        for i in 0..10 {
            acc.observe(1e-3, i * 30_000, 600_000);
        }
        assert!(acc.p_value() < single * 1e-6, "{} vs {single}", acc.p_value());
        // Ordinary p-values decay the evidence away.
        for i in 0..200 {
            acc.observe(0.5, 300_000 + i * 60_000, 600_000);
        }
        assert!(acc.p_value() > 0.05, "{}", acc.p_value());
    }

    #[test]
    fn a_learned_quiet_law_makes_few_jumps_significant() {
        let mut quiet = JumpLaw::default();
        for _ in 0..5000 {
            quiet.observe(0.0, 1.0, 5000.0);
        }
        let uniform = JumpLaw::default();
        // Three jumps of 4.6 nats among 50 events.
        assert!(quiet.p_value(13.8, 50.0) < 1e-5, "{}", quiet.p_value(13.8, 50.0));
        assert!(uniform.p_value(13.8, 50.0) > quiet.p_value(13.8, 50.0) * 100.0);
        // Small evidence is never computed.
        assert_eq!(quiet.p_value(0.4, 50.0), 1.0);
        // A law with frequent big jumps makes the same evidence ordinary.
        let mut noisy = JumpLaw::default();
        for i in 0..5000 {
            noisy.observe(if i % 5 == 0 { 3.0 } else { 0.0 }, 1.0, 5000.0);
        }
        assert!(noisy.p_value(13.8, 50.0) > 0.1, "{}", noisy.p_value(13.8, 50.0));
    }

    #[test]
    fn a_set_matches_single_accumulators() {
        let mut set = EvidenceSet::<2>::default();
        let mut single = EvidenceAccumulator::default();
        for (i, ts) in [0i64, 30_000, 90_000, 400_000].into_iter().enumerate() {
            let f = set.factor(ts, 60_000);
            let (e, n) = set.peek(0, 1e-3, f);
            set.advance(ts, 60_000);
            set.add(0, 1e-3);
            single.observe(1e-3, ts, 60_000);
            assert!((e - single.evidence()).abs() < 1e-3, "step {i}");
            assert!((n - single.events()).abs() < 1e-3);
        }
        set.reset(0);
        assert_eq!(set.peek(0, 1.0, 1.0), (0.0, 1.0));
    }

    #[test]
    fn time_never_runs_backwards() {
        let mut acc = EvidenceAccumulator::default();
        acc.observe(1e-4, 1_000_000, 60_000);
        let e = acc.evidence();
        acc.observe(0.5, 0, 60_000);
        assert!((acc.evidence() - e).abs() < 1e-6);
    }
}
