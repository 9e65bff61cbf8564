//! polyquery's end-to-end tests, one binary (DataFusion is linked once).

mod encode;
mod engine;
mod luminesce;
mod server;
mod support;
