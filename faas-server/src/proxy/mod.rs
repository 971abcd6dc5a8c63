//! Proxy mode (docs/api.md): the dispatcher forwards invokes and function-log
//! queries to its workers and never runs code itself.
//!
//! - `pool`: the workers, the choice of one per invoke (rendezvous
//!   hashing with `faas_sim::rendezvous`, the function the routing
//!   simulation measured), failover and health;
//! - `resolve`: the list of `LOWCODE_FAAS_WORKER_URL`, DNS names resolved
//!   again periodically (the resolver is a trait, tests fake it);
//! - `client`: one worker's HTTP client, which tells a request that never
//!   left from one that may have run.
//!
//! Invariant: a run that may have reached a worker is never sent to
//! another one; only a failure to connect (or a `429`, a refusal before
//! running) moves it down the order.

mod client;
mod pool;
mod resolve;

pub use client::WORKER_GRACE;
pub use pool::{route_key, PoolConfig, WorkerPool};
pub use resolve::{Resolve, SystemResolver};
