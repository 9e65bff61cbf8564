//! Placeholder until the Luminesce testing provider lands.
