//! `umlauf keygen`: makes an Ed25519 key file.

use std::path::PathBuf;

use umlauf_proof::keys;

/// Flags of `umlauf keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key (PKCS#8 PEM, mode 0600). An existing file is never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Makes the key and prints its public half and key id.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let key = crate::key_file::generate(&args.out)?;
    let public = key.verifying_key();
    crate::out!("wrote {} (readable by you only)", args.out.display())?;
    crate::out!("public key  {}", keys::public_key_to_base64(&public))?;
    crate::out!("key id      {}", keys::key_id(&public))?;
    Ok(())
}
