//! The `baton` binary's library: configuration, the command line, and the wiring
//! that starts a node. Integration tests start nodes through [`node::start`], the
//! same path `baton serve` takes.

pub mod cli;
pub mod config;
pub mod logging;
pub mod node;
