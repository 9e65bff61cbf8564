//! Integration tests, one module per area, linked into one binary.

mod encode;
