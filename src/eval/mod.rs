//! `spotlight eval`: does highlighting make the model follow instructions? Scoring, reports.

pub mod annotate;
pub mod condition;
pub mod data;
pub mod examples;
pub mod ifeval;
pub mod key;
pub mod multiturn;
pub mod repetition;
pub mod report;
pub mod responses;
pub(crate) mod rng;
pub mod subset;
