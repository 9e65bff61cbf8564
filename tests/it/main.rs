//! polyquery's end-to-end tests, one binary (DataFusion is linked once).

mod encode;
mod engine;
mod kylin;
mod server;
mod support;
