//! Signing commands locally: build the command, serialise it once, sign those bytes.

use chrono::{DateTime, SubsecRound as _, Utc};
use std::path::Path;
use umlauf_domain::ids::{Actor, BodyId, CommandId, KeyId, PublicKey};
use umlauf_domain::{Action, Command};
use umlauf_nats::client::{Client, ClientError, Submitted};

use umlauf_proof::SigningKey;
use umlauf_proof::checkpoint::Checkpoint;
use umlauf_proof::note::NoteVerifier;

use crate::options::ReceiptOptions;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};

/// A private key with the body and actor it signs for.
#[derive(Debug)]
pub struct Signer {
    key: SigningKey,
    body: BodyId,
    actor: Actor,
    receipts: Option<ReceiptOptions>,
}

impl Signer {
    /// A signer for `body`, acting as `actor`.
    pub fn new(key: SigningKey, body: BodyId, actor: Actor) -> Signer {
        Signer {
            key,
            body,
            actor,
            receipts: None,
        }
    }

    /// The same signer, which checks the receipts of what it submits with the log key of
    /// `options` (and saves them if asked) before it reports a command accepted.
    pub fn checking_receipts(mut self, options: ReceiptOptions) -> Signer {
        self.receipts = Some(options);
        self
    }

    /// The body it signs for.
    pub fn body(&self) -> &BodyId {
        &self.body
    }

    /// The actor it signs as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The key's public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(&self.public_key())
    }

    /// A new command: a fresh command id, issued now by this machine's clock (to the
    /// millisecond).
    pub fn command(&self, action: Action) -> Command {
        self.command_at(
            action,
            CommandId(uuid::Uuid::new_v4()),
            Utc::now().trunc_subsecs(3),
        )
    }

    /// A command with the id and time given.
    pub fn command_at(
        &self,
        action: Action,
        command_id: CommandId,
        issued_at: DateTime<Utc>,
    ) -> Command {
        Command {
            command_id,
            body: self.body.clone(),
            actor: self.actor.clone(),
            issued_at,
            action,
        }
    }

    /// Serialises the command once and signs exactly those bytes.
    pub fn sign(&self, command: &Command) -> Envelope {
        let payload = command.to_json();
        dsse::sign(COMMAND_PAYLOAD_TYPE, payload.as_bytes(), &self.key)
    }

    /// Builds, signs and submits a command. If the service does not answer in time, or answers
    /// `busy`, the same envelope is sent again (twice at most): the service records a command
    /// once and answers a repeat with the first result, so a retry can never cast a vote twice.
    pub async fn submit(
        &self,
        client: &Client,
        action: Action,
    ) -> Result<(Command, Submitted), ClientError> {
        // The key the receipts must verify with is read before anything is sent.
        let log_key = match &self.receipts {
            Some(options) => Some(
                options
                    .log_key
                    .verifier()
                    .map_err(|error| ClientError::Receipt(format!("{error:#}")))?,
            ),
            None => None,
        };
        let command = self.command(action);
        let envelope = self.sign(&command);
        let mut attempts = 0;
        let submitted = loop {
            attempts += 1;
            match client.submit(&envelope).await {
                Err(ClientError::Timeout { .. }) if attempts < 3 => {}
                Err(ClientError::Refused(refusal)) if refusal.code == "busy" && attempts < 3 => {
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempts)).await;
                }
                result => break result?,
            }
        };
        if let (Some(log_key), Some(options)) = (log_key, &self.receipts) {
            check_receipts(&submitted, &log_key, options.save_receipt.as_deref())?;
        }
        Ok((command, submitted))
    }
}

/// Verifies every receipt of a reply with the log key, and writes the receipt of the first
/// record (the one holding the signed command) to `save` if given.
pub fn check_receipts(
    submitted: &Submitted,
    log_key: &NoteVerifier,
    save: Option<&Path>,
) -> Result<Checkpoint, ClientError> {
    let checkpoint = submitted.reply.verify_receipts(log_key).map_err(|error| {
        ClientError::Receipt(format!(
            "the service's reply does not prove the command is in the log of {log_key}: {error}; \
             the command may have been recorded, but not in the log this key speaks for"
        ))
    })?;
    if let (Some(path), Some(receipt)) = (save, submitted.reply.receipts.first()) {
        std::fs::write(path, format!("{}\n", receipt.to_json())).map_err(|error| {
            ClientError::Receipt(format!(
                "the receipt verified, but cannot be saved to {}: {error}",
                path.display()
            ))
        })?;
    }
    Ok(checkpoint)
}

impl Signer {}

/// What an accepted command's reply says, in one line: `accepted: CastVote at log position 43`.
pub fn describe_reply(command: &Command, reply: &Submitted) -> String {
    let positions = reply.positions();
    let place = match positions.as_slice() {
        [] => "with no new record".to_owned(),
        [position] => format!("at log position {position}"),
        [first, .., last] => format!("at log positions {first}–{last}"),
    };
    let again = if reply.duplicate() {
        " (already recorded before; nothing new written)"
    } else {
        ""
    };
    format!("accepted: {} {place}{again}", command.type_name())
}
