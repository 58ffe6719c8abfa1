//! Key files: Ed25519 private keys as PKCS#8 PEM, public keys as base64 or PEM.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use umlauf_domain::ids::PublicKey;
use umlauf_proof::keys;
use umlauf_proof::{SigningKey, VerifyingKey};

/// Generates a key and writes it to `path`, which must not exist yet; the file is readable by
/// its owner only (mode 0600).
pub fn generate(path: &Path) -> anyhow::Result<SigningKey> {
    let key = SigningKey::generate(&mut rand::rng());
    write_new(path, &key)?;
    Ok(key)
}

/// Writes `key` as PKCS#8 PEM to a new file readable by its owner only. Refuses to overwrite.
pub fn write_new(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists already: refusing to overwrite a key",
                path.display()
            )
        } else {
            anyhow::Error::new(error).context(format!("creating {}", path.display()))
        }
    })?;
    file.write_all(keys::signing_key_to_pem(key).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads a private key file.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    keys::signing_key_from_pem(&pem).with_context(|| {
        format!(
            "{} is not an Ed25519 private key in PKCS#8 PEM",
            path.display()
        )
    })
}

/// Reads a public key from a PEM file: the public half of a private key file, or a public key
/// file as `openssl pkey -pubout` writes it. Weak keys are refused.
pub fn load_public_key(path: &Path) -> anyhow::Result<VerifyingKey> {
    use ed25519_dalek::pkcs8::DecodePublicKey as _;
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let key = if pem.contains("PUBLIC KEY") {
        let key = VerifyingKey::from_public_key_pem(&pem).map_err(|error| {
            anyhow::anyhow!(
                "{} is not an Ed25519 public key in PEM: {error}",
                path.display()
            )
        })?;
        keys::public_key_from_bytes(key.as_bytes())
            .with_context(|| format!("the public key in {}", path.display()))?
    } else {
        keys::signing_key_from_pem(&pem)
            .with_context(|| {
                format!(
                    "{} is neither an Ed25519 private key in PKCS#8 PEM nor a public key",
                    path.display()
                )
            })?
            .verifying_key()
    };
    Ok(key)
}

/// Parses a public key in base64, refusing malformed and weak keys.
pub fn parse_public_key(text: &str) -> anyhow::Result<PublicKey> {
    let key = keys::public_key_from_base64(text.trim())
        .with_context(|| format!("{text:?} is not an Ed25519 public key in base64"))?;
    Ok(domain_key(&key))
}

/// The domain's form of a public key.
pub fn domain_key(key: &VerifyingKey) -> PublicKey {
    PublicKey(key.to_bytes())
}
