//! Rendezvous (highest-random-weight) hashing: which worker a key goes to.
//!
//! Every worker gets a score for the key; the key's home is the worker with
//! the highest score, and the other workers in descending score order are
//! where it fails over to. Adding or removing one worker of N moves only the
//! keys whose home it was (about 1/N of them); every other key keeps its home
//! and its whole failover order, less the removed worker.
//!
//! The score is a stable 64-bit hash, the same on every machine, build and
//! run (no per-process random keys, unlike `std`'s `RandomState`), so two
//! dispatchers that see the same worker list agree without talking:
//!
//! ```text
//! score(key, worker) = fmix64(fnv1a64(le_u64(len(key)) ‖ key ‖ worker))
//! ```
//!
//! - `fnv1a64` is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime
//!   `0x100000001b3`) over the bytes in that order;
//! - the key's length as 8 little-endian bytes first makes the split between
//!   key and worker unambiguous (`("ab", "c")` and `("a", "bc")` differ);
//! - `fmix64` is MurmurHash3's 64-bit finaliser; FNV-1a alone mixes the last
//!   bytes (the worker name) weakly into the high bits that decide the order,
//!   the finaliser spreads every input bit over the whole word.
//!
//! ```
//! use faas_sim::rendezvous::{home, rank, score};
//!
//! let workers = ["lowcode-faas-worker-0", "lowcode-faas-worker-1", "lowcode-faas-worker-2"];
//! let order = rank("team/api/hello", &workers); // home first, then the failover order
//! assert_eq!(order.len(), 3);
//! assert_eq!(home("team/api/hello", &workers), Some(order[0]));
//! assert!(score("team/api/hello", workers[order[0]]) >= score("team/api/hello", workers[order[1]]));
//! ```
//!
//! Ties (probability 2⁻⁶⁴ per pair) are broken by the worker string, ascending,
//! so the order is total. The hash is not keyed: it balances honest keys and
//! is no defence against keys chosen to collide, which is fine for function
//! names an operator deploys.

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`, continuing from `state` (start with the offset basis).
fn fnv1a64(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// MurmurHash3's 64-bit finaliser: a bijection with full avalanche.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The score of `worker` for `key`: higher wins. Stable across runs, builds
/// and machines (see the module documentation for the exact definition).
pub fn score(key: &str, worker: &str) -> u64 {
    let len = u64::try_from(key.len()).unwrap_or(u64::MAX);
    let mut h = fnv1a64(FNV_OFFSET_BASIS, &len.to_le_bytes());
    h = fnv1a64(h, key.as_bytes());
    h = fnv1a64(h, worker.as_bytes());
    fmix64(h)
}

/// Indices into `workers`, best first: the key's home, then the workers it
/// fails over to, in order. Empty when `workers` is empty.
pub fn rank<W: AsRef<str>>(key: &str, workers: &[W]) -> Vec<usize> {
    let mut scored: Vec<(u64, &str, usize)> = workers
        .iter()
        .enumerate()
        .map(|(i, w)| (score(key, w.as_ref()), w.as_ref(), i))
        .collect();
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, _, i)| i).collect()
}

/// The key's home: the first index [`rank`] would return, without sorting.
pub fn home<W: AsRef<str>>(key: &str, workers: &[W]) -> Option<usize> {
    workers
        .iter()
        .enumerate()
        .map(|(i, w)| (score(key, w.as_ref()), w.as_ref(), i))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, _, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workers(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:9090")).collect()
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(FNV_OFFSET_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn score_is_stable_across_runs_and_builds() {
        // Pinned values: a change here changes where every deployed key lives.
        assert_eq!(score("hello@v1", "10.0.0.1:9090"), score("hello@v1", "10.0.0.1:9090"));
        assert_eq!(score("", ""), fmix64(fnv1a64(FNV_OFFSET_BASIS, &0u64.to_le_bytes())));
        assert_eq!(score("hello@v1", "10.0.0.1:9090"), PINNED_HELLO_W1);
        assert_eq!(score("team/api/v2/fn@v7", "lowcode-faas-worker-0"), PINNED_TEAM_W0);
    }

    // Computed by an independent implementation of the definition (Python, 2026-11-29).
    const PINNED_HELLO_W1: u64 = 0xdb41_ead7_c310_aca7;
    const PINNED_TEAM_W0: u64 = 0xce49_f5aa_22e4_23e2;

    #[test]
    fn the_split_between_key_and_worker_is_unambiguous() {
        assert_ne!(score("ab", "c"), score("a", "bc"));
    }

    #[test]
    fn rank_is_a_permutation_led_by_home() {
        let ws = workers(7);
        for k in 0..200 {
            let key = format!("fn-{k}");
            let r = rank(&key, &ws);
            let mut sorted = r.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..7).collect::<Vec<_>>());
            assert_eq!(home(&key, &ws), r.first().copied());
        }
        assert!(rank("k", &Vec::<String>::new()).is_empty());
        assert_eq!(home("k", &Vec::<String>::new()), None);
    }

    #[test]
    fn homes_spread_about_uniformly() {
        let ws = workers(10);
        let keys = 20_000;
        let mut counts = [0usize; 10];
        for k in 0..keys {
            if let Some(h) = home(&format!("fn-{k}@v1"), &ws) {
                counts[h] += 1;
            }
        }
        let mean = keys / 10;
        for c in counts {
            // Binomial sd is ~42 here; 10 % is ~5 sd.
            assert!(c.abs_diff(mean) < mean / 10, "counts {counts:?}");
        }
    }

    #[test]
    fn removing_a_worker_moves_only_its_own_keys() {
        let ws = workers(10);
        let removed = 3;
        let rest: Vec<String> = ws
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != removed)
            .map(|(_, w)| w.clone())
            .collect();
        let keys = 10_000;
        let mut moved = 0;
        for k in 0..keys {
            let key = format!("fn-{k}@v1");
            let before = &ws[home(&key, &ws).unwrap_or(usize::MAX)];
            let after = &rest[home(&key, &rest).unwrap_or(usize::MAX)];
            if before != after {
                moved += 1;
                assert_eq!(before, &ws[removed], "{key} moved off a worker that stayed");
            }
            // The failover order of the others is unchanged too.
            let order_before: Vec<&String> = rank(&key, &ws)
                .into_iter()
                .map(|i| &ws[i])
                .filter(|w| **w != ws[removed])
                .collect();
            let order_after: Vec<&String> = rank(&key, &rest).into_iter().map(|i| &rest[i]).collect();
            assert_eq!(order_before, order_after);
        }
        let fraction = moved as f64 / keys as f64;
        assert!((0.08..0.12).contains(&fraction), "moved {fraction}");
    }
}
