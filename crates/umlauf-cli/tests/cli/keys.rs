//! `umlauf keygen` and key files: mode 0600, no overwriting, OpenSSL's formats.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use base64::Engine as _;
use umlauf_cli::key_file;
use umlauf_proof::keys;

use crate::support::{run_in, stderr, success};

/// The value after `label` on a line of `text`.
fn field<'t>(text: &'t str, label: &str) -> &'t str {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
}

#[test]
fn keygen_writes_an_owner_only_key_and_prints_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let output = success(&run_in(dir.path(), &["keygen", "--out", "member.pem"]));
    let path = dir.path().join("member.pem");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");

    let key = key_file::load_signing_key(&path).unwrap();
    let public = key.verifying_key();
    assert_eq!(
        field(&output, "public key"),
        keys::public_key_to_base64(&public)
    );
    assert_eq!(field(&output, "key id"), keys::key_id(&public));
}

#[test]
fn keygen_never_overwrites_a_key() {
    let dir = tempfile::tempdir().unwrap();
    success(&run_in(dir.path(), &["keygen", "--out", "key.pem"]));
    let before = std::fs::read(dir.path().join("key.pem")).unwrap();
    let output = run_in(dir.path(), &["keygen", "--out", "key.pem"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: ") && stderr(&output).contains("refusing to overwrite"),
        "{}",
        stderr(&output)
    );
    assert_eq!(std::fs::read(dir.path().join("key.pem")).unwrap(), before);
}

/// Runs `openssl`; these tests fail, never skip, without it.
fn openssl(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("this test needs the `openssl` binary on PATH: {error}"));
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn keys_are_interchangeable_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    // Our key, read by OpenSSL: the public key it derives is the one keygen printed.
    let output = success(&run_in(dir.path(), &["keygen", "--out", "ours.pem"]));
    let der = openssl(
        dir.path(),
        &["pkey", "-in", "ours.pem", "-pubout", "-outform", "DER"],
    );
    let printed = base64::engine::general_purpose::STANDARD
        .decode(field(&output, "public key"))
        .unwrap();
    assert_eq!(der[der.len() - 32..], printed[..]);

    // OpenSSL's key, and its public key file, read here: the same public key either way.
    openssl(
        dir.path(),
        &["genpkey", "-algorithm", "ed25519", "-out", "theirs.pem"],
    );
    openssl(
        dir.path(),
        &[
            "pkey",
            "-in",
            "theirs.pem",
            "-pubout",
            "-out",
            "theirs.pub.pem",
        ],
    );
    let from_private = key_file::load_public_key(&dir.path().join("theirs.pem")).unwrap();
    let from_public = key_file::load_public_key(&dir.path().join("theirs.pub.pem")).unwrap();
    assert_eq!(from_private, from_public);
    assert_eq!(
        key_file::load_signing_key(&dir.path().join("theirs.pem"))
            .unwrap()
            .verifying_key(),
        from_private
    );
}

#[test]
fn errors_print_their_whole_chain_and_exit_with_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_in(
        dir.path(),
        &[
            "key",
            "register",
            "--holder",
            "DE-BY",
            "--key-file",
            "missing.pem",
            "--key",
            "missing.pem",
            "--body",
            "it-planungsrat",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.starts_with("error: reading key file missing.pem: "),
        "{error}"
    );
}
