//! `umlauf`: the service (`umlauf serve`), the clients of secretariats, members and subscribers,
//! the demo and the benchmark, in one binary.
//!
//! `main` returns an exit code from [`run`]: 0 on success, 1 with the whole error chain on
//! standard error otherwise (a refusal by the service reads `error: <code>: <message>`), and 2
//! for a command line clap refuses.

mod audit;
mod bench;
mod receipt;
mod serve;

use std::process::ExitCode;

use clap::Parser as _;
use umlauf_cli::commands::{body, circulation, key, keygen, status, watch};
use umlauf_cli::demo;

/// Signed votes for written resolution procedures (Umlaufverfahren).
///
/// Every command is signed locally with your key file and sent over NATS; the private key never
/// leaves this machine. Connection and signer options can be set by environment variables:
/// UMLAUF_NATS_URL, UMLAUF_SUBJECT_ROOT, UMLAUF_STREAM_PREFIX, UMLAUF_KEY, UMLAUF_BODY,
/// UMLAUF_ACTOR.
#[derive(Debug, clap::Parser)]
#[command(name = "umlauf", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the service: command intake, queries, the relay and the deadline scheduler.
    Serve(serve::ServeArgs),
    /// Make an Ed25519 key file (PKCS#8 PEM, like `openssl genpkey -algorithm ed25519`).
    Keygen(keygen::Args),
    /// Constitute a body from a body file.
    #[command(subcommand)]
    Body(body::Command),
    /// Register, revoke and list keys.
    #[command(subcommand)]
    Key(key::Command),
    /// Open a circulation (secretariat).
    Open(circulation::OpenArgs),
    /// Vote yes, no or abstain on a circulation (member).
    Vote(circulation::VoteArgs),
    /// Object to the written procedure (member).
    Object(circulation::ObjectArgs),
    /// Move a circulation's deadline later (secretariat).
    Extend(circulation::ExtendArgs),
    /// Withdraw a circulation (secretariat).
    Withdraw(circulation::WithdrawArgs),
    /// Show a circulation: votes, who is missing, objections, the tally, the decision.
    Status(status::StatusArgs),
    /// Show what awaits a member's vote.
    Inbox(status::InboxArgs),
    /// Follow decisions as they arrive (durable JetStream consumer).
    Watch(watch::WatchArgs),
    /// Play an IT-Planungsrat circulation end to end against a running service.
    Demo(demo::Args),
    /// Measure throughput and latency end to end.
    Bench(bench::BenchArgs),
    /// Replay and verify a history, or export it as a self-contained bundle (auditor).
    Audit(audit::AuditArgs),
    /// Check a saved receipt against the log key, and a newer checkpoint (auditor, signer).
    Receipt(receipt::ReceiptArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // Whoever read the output has stopped reading (`umlauf watch | head`): not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole chain: `error: reading key file k.pem: No such file …`.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let done = match cli.command {
            Command::Audit(args) => return audit::run(args).await,
            Command::Receipt(args) => return receipt::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Keygen(args) => keygen::run(&args),
            Command::Body(command) => body::run(command).await,
            Command::Key(command) => key::run(command).await,
            Command::Open(args) => circulation::open(args).await,
            Command::Vote(args) => circulation::vote(args).await,
            Command::Object(args) => circulation::object(args).await,
            Command::Extend(args) => circulation::extend(args).await,
            Command::Withdraw(args) => circulation::withdraw(args).await,
            Command::Status(args) => status::status(args).await,
            Command::Inbox(args) => status::inbox(args).await,
            Command::Watch(args) => watch::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Bench(args) => bench::run(args).await,
        };
        done.map(|()| ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        // Catches clashing option names, e.g. between `serve`'s options and the clients'.
        super::Cli::command().debug_assert();
    }
}
