//! The domain stays pure: no clock, no randomness, no IO, no async anywhere in its sources.
//!
//! `clippy.toml` catches calls it can resolve; this test also catches those behind features that
//! are off in a single-crate build but may be on in the workspace.

use std::path::Path;

const FORBIDDEN: [&str; 12] = [
    "Utc::now",
    "Local::now",
    "SystemTime::now",
    "Instant::now",
    "new_v4",
    "now_v7",
    "thread_rng",
    "OsRng",
    "std::fs",
    "std::net",
    "tokio",
    "async fn",
];

fn sources(dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
    {
        let path = entry.unwrap_or_else(|error| panic!("{error}")).path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{error}"));
            found.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn the_domain_reads_no_clock_draws_no_randomness_and_does_no_io() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(!files.is_empty());
    for (path, text) in files {
        for forbidden in FORBIDDEN {
            assert!(!text.contains(forbidden), "{path} uses {forbidden}");
        }
    }
}
