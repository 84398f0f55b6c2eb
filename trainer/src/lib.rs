//! The trainer's library: everything the `trainer` command line runs, in modules
//! that tests and the fuzz targets (`tests/fuzz/`) can call directly.

pub mod allocator;
pub mod bench;
pub mod calibrate;
pub mod checkpoint;
pub mod data;
pub mod evaluate;
pub mod export;
pub mod imdb;
pub mod inference_args;
pub mod inputs;
pub mod metrics;
pub mod predict;
pub mod progress;
pub mod reliability;
pub mod report;
pub mod train;

/// Returned when Ctrl-C stopped a job after it saved its work.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}
