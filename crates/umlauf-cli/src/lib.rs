//! The client side of the `umlauf` command: key files, body files, deadlines, signing, the
//! client subcommands, the status and decision views, and the demo.
//!
//! The binary (`src/main.rs`) parses the command line and dispatches here; `umlauf serve` and
//! `umlauf bench` live beside it in the binary.
//!
//! **Architecture Invariant:** private keys never leave this process. Every command is built as a
//! [`umlauf_domain::Command`], serialised once, signed over those exact bytes with the local key
//! file ([`signer::Signer`]), and only the DSSE envelope goes over the wire.
//!
//! The pure parts (body files with their exact decimal weights, deadline parsing, the status
//! table and the decision view) take every input as an argument, the clock and the time zone
//! included, so the tests in `tests/cli` check them without a service.

/// Writes a line to standard output and returns the IO error instead of panicking as `println!`
/// does: a closed pipe (`umlauf watch | head`) then ends the command quietly (see `main`).
#[macro_export]
macro_rules! out {
    () => {
        $crate::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

/// Writes formatted text and a newline to standard output; what [`out!`] expands to.
pub fn write_line(text: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_fmt(text)?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

pub mod body_file;
pub mod commands;
pub mod deadline;
pub mod demo;
pub mod key_file;
pub mod options;
pub mod render;
pub mod signer;
