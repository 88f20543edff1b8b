//! The fault suite's harness, shared by the test targets that run worker
//! processes (`mod harness;`) and by the soak (`examples/soak/`):
//!
//! - `run`: a set of worker processes (`examples/worker/`) sharing a
//!   database and a log directory, stopped cleanly, their history checked;
//! - `checker`: the history checker, one module per family of rules;
//! - `recorder`: what the server saw (the change stream in commit order,
//!   the resource documents' own write logs);
//! - the fault proxy is the test kit's (`mongoelector::testing::FaultProxy`);
//! - `clock`: the one monotonic clock of every process's history.
#![allow(dead_code)]

pub mod checker;
pub mod clock;
pub mod recorder;
pub mod run;
