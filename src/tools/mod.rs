//! Tools around the gateway: the benchmark and the scenario replayer.

pub mod bench;
pub mod replay;
