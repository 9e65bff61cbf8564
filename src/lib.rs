//! polyquery: four vendors' asynchronous-query HTTP APIs over one real SQL job engine.
//!
//! The layers, outermost first: `server` routes HTTP to a `dialect` front; a front translates its
//! wire into calls on the `engine`, which keeps jobs and runs them through an `exec::Executor`;
//! results come back as Arrow batches and leave through an `encode` format.

pub mod balance;
pub mod bench;
pub mod config;
pub mod contract;
pub mod control;
pub mod dialect;
pub mod encode;
pub mod engine;
pub mod exec;
pub mod fuzz;
pub mod query;
pub mod server;
pub mod sql;
pub mod wire;
