//! Running the binary, scratch directories and snapshot files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `umlauf` binary, with no `UMLAUF_*` variables inherited from the caller's environment.
pub(crate) fn umlauf() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_umlauf"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("UMLAUF_") {
            command.env_remove(name);
        }
    }
    command.env("NO_COLOR", "1");
    command
}

/// Runs `umlauf` with `args` in `dir`.
pub(crate) fn run_in(dir: &Path, args: &[&str]) -> Output {
    umlauf()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running the umlauf binary")
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns standard output.
pub(crate) fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "umlauf failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// The repository's root.
pub(crate) fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of the test data, `tests/cli/data/<name>`.
pub(crate) fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/data")
        .join(name)
}

/// Compares `actual` with the snapshot `tests/cli/data/<name>`; with `UPDATE_SNAPSHOTS=1` in
/// the environment, writes `actual` as the new snapshot instead.
pub(crate) fn check_snapshot(name: &str, actual: &str) {
    let path = data_file(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the snapshot {}: {error}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{name} differs from its snapshot (UPDATE_SNAPSHOTS=1 refreshes it)\n\
             --- expected\n{expected}\n--- actual\n{actual}"
        );
    }
}
