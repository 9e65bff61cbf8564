//! placeholder
pub mod fixtures;
pub mod functions;
pub mod testing_provider;
