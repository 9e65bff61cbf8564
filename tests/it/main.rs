//! polyquery's end-to-end tests, one binary (DataFusion is linked once).

mod asterixdb;
mod cli;
mod cluster;
mod control;
mod cross_wire;
mod encode;
mod engine;
mod fixtures;
mod kylin;
mod looker;
mod luminesce;
mod postgres;
mod server;
mod support;
