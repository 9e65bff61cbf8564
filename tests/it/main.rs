//! polyquery's end-to-end tests, one binary (DataFusion is linked once).

mod asterixdb;
mod encode;
mod engine;
mod server;
mod support;
