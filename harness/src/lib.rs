//! Machinery of `conform`: everything needed to boot a candidate binary against real services
//! and observe it, and nothing about any clause.
//!
//! The split matters: clauses (in the `conform-catalogue` crate, run by `conform-engine`) say *what* a framework promises;
//! this crate says *how* to start a process, wait for it, probe it, give it a database, and write
//! down what happened. Keeping clause knowledge out of here is what lets one drain or probe
//! routine serve both frameworks through their profiles.
#![warn(missing_docs)]

pub mod candidate;
pub mod elf;
pub mod evidence;
pub mod jwks;
pub mod manifest;
pub mod output;
pub mod poll;
pub mod ports;
pub mod probe;
pub mod process;
pub mod prometheus;
pub mod ready;
pub mod reaper;
pub mod record;
pub mod redact;
pub mod release;
pub mod report;
pub mod running;
pub mod service;
pub mod sockets;
pub mod timeouts;
pub mod tls;
pub mod tool;
pub mod verdict;
pub mod workdir;
