//! # faas-sim
//!
//! How should a dispatcher pick one of N workers when each worker keeps warm
//! runners of the functions it served? This crate answers with a
//! simulation (the `routing-sim` binary) and holds the function the answer
//! needs, [`rendezvous::score`] / [`rendezvous::rank`], so the dispatcher can
//! use exactly the hash the simulation measured.
//!
//! - [`rendezvous`]: highest-random-weight hashing with a stable,
//!   documented 64-bit hash (FNV-1a + MurmurHash3's finaliser);
//! - [`workload`]: a seeded SplitMix64 PRNG, Zipf-like function popularity,
//!   Poisson arrivals;
//! - [`sim`]: workers with bounded concurrency and an LRU + TTL warm pool,
//!   the routing policies, the counts;
//! - [`report`]: the command's flags and its Markdown tables.
//!
//! Invariants: std only, no I/O but the binary's stdout, no wall clock and no
//! OS randomness: the same flags print the same report on every machine.
#![warn(missing_docs)]

pub mod rendezvous;
pub mod report;
pub mod sim;
pub mod workload;
