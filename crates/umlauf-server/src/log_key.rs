//! The log key: the Ed25519 key the service signs checkpoints with.
//!
//! It is a PKCS#8 PEM file. The single-node default creates it on first start (mode 0600) and
//! keeps it; the replicas of a deployment are all given the same file. It is created under a
//! temporary name and linked into place, so two replicas starting at once on a shared directory
//! end up with one key, and a crash never leaves half a key behind.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use umlauf_proof::SigningKey;
use umlauf_proof::keys::{signing_key_from_pem, signing_key_to_pem};

/// Why the log key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    /// The file could not be read or written.
    #[error("log key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Ed25519 PKCS#8 PEM private key.
    #[error("log key file {path} is not an Ed25519 PKCS#8 PEM private key: {source}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: umlauf_proof::ProofError,
    },
}

/// Reads the log key at `path`, creating it (and its directory) if it does not exist.
pub fn load_or_create(path: &Path) -> Result<SigningKey, LogKeyError> {
    let io = |source| LogKeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => {
            let metadata = std::fs::metadata(path).map_err(io)?;
            if metadata.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the log key file is readable by others; it should have mode 0600");
            }
            return signing_key_from_pem(&pem).map_err(|source| LogKeyError::Malformed {
                path: path.to_path_buf(),
                source,
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io(error)),
    }
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory).map_err(io)?;
    }
    let key = SigningKey::generate(&mut rand::rng());
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(signing_key_to_pem(&key).as_bytes())?;
        file.sync_all()?;
        // Fails if another process created the key meanwhile: then that one is the key.
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new log key");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(error) => Err(io(error)),
    }
}

/// Writes the log's verifier key (C2SP vkey, `<origin>+<hex8>+<base64>`) to `path`, with a
/// newline; the file is readable by all, since it holds no secret.
pub(crate) fn write_vkey(
    path: &Path,
    verifier: &umlauf_proof::note::NoteVerifier,
) -> Result<(), LogKeyError> {
    let io = |source| LogKeyError::Io {
        path: path.to_owned(),
        source,
    };
    let text = format!("{verifier}\n");
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory).map_err(io)?;
    }
    // Written under a temporary name and renamed, so a reader never sees half a key.
    let temporary = path.with_extension(format!("vkey.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text).map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_with_mode_0600_and_kept() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("data").join("log-key.pem");
        let first = load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.to_bytes(), second.to_bytes());
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(LogKeyError::Malformed { .. })
        ));
    }
}
