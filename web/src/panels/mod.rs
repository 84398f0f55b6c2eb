//! The page's panels, one feature each. Each takes the state it reads from
//! context ([`crate::state`], [`crate::lifecycle::ModelState`]).

pub mod batch;
pub mod engine_bar;
pub mod explanation;
pub mod model_panel;
pub mod progress;
pub mod single_review;
pub mod teach;
