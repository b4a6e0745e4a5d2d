//! The benchmark inputs (`bench/src/lib.rs`), shared with the host benchmarks.
#[path = "../../src/lib.rs"]
mod inputs;
pub use inputs::*;
