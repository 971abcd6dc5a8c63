//! The simulated requests: a seeded PRNG, a Zipf-like popularity over the
//! functions, Poisson arrivals and exponential run times. One trace is made
//! once and replayed to every policy, so they are compared on the same
//! requests.

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, well-distributed
/// 64-bit generator. Same seed, same sequence, on every machine.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is decided by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift (bias below 2⁻³² for our n).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as usize
    }

    /// Exponentially distributed with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        -mean * (1.0 - self.next_f64()).ln()
    }
}

/// Function popularity: function `k` (0-based) is drawn with probability
/// proportional to `1 / (k + 1)^s`. `s = 0` is uniform; `s ≈ 1` is the
/// classic "few hot functions, a long tail".
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The distribution over `n` functions (`n ≥ 1`) with exponent `s ≥ 0`.
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Self { cdf }
    }

    /// Probability of function `k`.
    pub fn probability(&self, k: usize) -> f64 {
        let prev = if k == 0 { 0.0 } else { self.cdf[k - 1] };
        self.cdf.get(k).map_or(0.0, |c| c - prev)
    }

    /// Draws a function index.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.next_f64();
        self.cdf.partition_point(|&c| c <= u).min(self.cdf.len() - 1)
    }
}

/// One simulated invoke.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// Arrival time, simulated milliseconds from the start.
    pub at_ms: f64,
    /// Index of the function invoked.
    pub function: usize,
    /// How long the run takes once it has a runner, in milliseconds.
    pub run_ms: f64,
}

/// What the trace looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSpec {
    /// Number of distinct functions (keys).
    pub functions: usize,
    /// Number of requests.
    pub requests: usize,
    /// Zipf exponent of the function popularity.
    pub zipf_s: f64,
    /// Requests per simulated millisecond, all workers together.
    pub arrivals_per_ms: f64,
    /// Mean run time in milliseconds (exponentially distributed).
    pub mean_run_ms: f64,
}

/// The requests of one simulation, in arrival order.
pub fn trace(spec: &TraceSpec, rng: &mut Rng) -> Vec<Request> {
    let zipf = Zipf::new(spec.functions, spec.zipf_s);
    let mut at_ms = 0.0;
    (0..spec.requests)
        .map(|_| {
            at_ms += rng.exp(1.0 / spec.arrivals_per_ms);
            Request {
                at_ms,
                function: zipf.sample(rng),
                run_ms: rng.exp(spec.mean_run_ms),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a: Vec<u64> = std::iter::repeat_with({
            let mut r = Rng::new(42);
            move || r.next_u64()
        })
        .take(5)
        .collect();
        let mut r = Rng::new(42);
        assert_eq!(a, (0..5).map(|_| r.next_u64()).collect::<Vec<_>>());
        // SplitMix64's published first output for seed 0.
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn zipf_probabilities_sum_to_one_and_decrease() {
        let z = Zipf::new(1000, 1.1);
        let sum: f64 = (0..1000).map(|k| z.probability(k)).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        assert!((1..1000).all(|k| z.probability(k) <= z.probability(k - 1)));
        let uniform = Zipf::new(4, 0.0);
        assert!((0..4).all(|k| (uniform.probability(k) - 0.25).abs() < 1e-12));
    }

    #[test]
    fn zipf_samples_follow_the_probabilities() {
        let z = Zipf::new(100, 1.1);
        let mut rng = Rng::new(7);
        let n = 200_000;
        let mut counts = vec![0usize; 100];
        for _ in 0..n {
            counts[z.sample(&mut rng)] += 1;
        }
        let observed = counts[0] as f64 / n as f64;
        assert!(
            (observed - z.probability(0)).abs() < 0.01,
            "{observed} vs {}",
            z.probability(0)
        );
    }

    #[test]
    fn trace_is_deterministic_and_ordered() {
        let spec = TraceSpec {
            functions: 10,
            requests: 1000,
            zipf_s: 1.0,
            arrivals_per_ms: 2.0,
            mean_run_ms: 50.0,
        };
        let a = trace(&spec, &mut Rng::new(1));
        assert_eq!(a, trace(&spec, &mut Rng::new(1)));
        assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert!(a.iter().all(|r| r.function < 10 && r.run_ms >= 0.0));
    }
}
