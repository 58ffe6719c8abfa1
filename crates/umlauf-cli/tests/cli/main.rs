//! Tests of the `umlauf` command line, in one test binary (one module per area).
//!
//! The pure parts (body files, deadlines, the status view) are checked through the library;
//! key files and the demo through the real binary. The demo test needs NATS with JetStream on
//! 127.0.0.1:4222 (`tests/services` starts it) and fails, never skips, without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod body_file;
mod deadline;
mod demo;
mod keys;
mod status_view;
mod support;
