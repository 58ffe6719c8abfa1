//! Bundles: a self-contained, line-oriented export of a history that an auditor can verify
//! offline.
//!
//! ```text
//! {"format":"umlauf-bundle/1","anchors":{"genesis_keys":[…],"log_key":"…"},"size":N}
//! <record 1's exact bytes>
//! <record 2's exact bytes>
//! {"checkpoint":"<signed note>"}      ← a checkpoint of size 2, right after record 2
//! …
//! <record N's exact bytes>
//! {"checkpoint":"<signed note>"}      ← checkpoints of size N, and any larger ones, last
//! ```
//!
//! The first line is the header. Every further line is a record (its exact bytes: records are
//! compact single-line JSON, and always start with `{"position":`) or a checkpoint. A checkpoint
//! stands right after the record at its size (a checkpoint of size 0 right after the header),
//! so a reader streams the bundle once and checks each checkpoint with an O(log n) frontier;
//! the writer places them there whatever order they are given in.
//!
//! The header's anchors are informational: an auditor verifies with the anchors it trusts, and
//! reports a bundle whose header names others.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::anchors::TrustAnchors;
use crate::auditor::{AuditOptions, Auditor};
use crate::finding::{AuditFailure, FindingKind, Report};

/// The format name in the header.
pub const FORMAT: &str = "umlauf-bundle/1";

/// The header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// The anchors the exporter names (informational).
    pub anchors: TrustAnchors,
    /// The number of records.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    checkpoint: String,
}

/// Why a bundle cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("bundle i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The header is missing or not a bundle header.
    #[error("bad bundle header: {0}")]
    BadHeader(String),
    /// A line is neither a record nor a checkpoint.
    #[error("line {line}: {detail}")]
    BadLine {
        /// The line number, from 1 (the header).
        line: u64,
        /// What is wrong.
        detail: String,
    },
    /// A record for the writer is not single-line.
    #[error("record {position} contains a line break and cannot be a bundle line")]
    MultiLineRecord {
        /// Its place among the records written.
        position: u64,
    },
    /// A checkpoint for the writer cannot be placed: unreadable, or its size already passed.
    #[error("checkpoint cannot be placed: {0}")]
    Checkpoint(String),
    /// The writer was given another number of records than its header announced.
    #[error("the header announced {announced} records, {written} were written")]
    SizeMismatch {
        /// In the header.
        announced: u64,
        /// Written.
        written: u64,
    },
}

/// Writes a bundle to any [`Write`]: the header at once, then records and checkpoints.
#[derive(Debug)]
pub struct BundleWriter<W: Write> {
    out: W,
    announced: u64,
    written: u64,
    checkpoints: BTreeMap<u64, Vec<String>>,
}

impl<W: Write> BundleWriter<W> {
    /// Starts a bundle of `size` records named with `anchors`, with the checkpoints to place.
    pub fn new(
        mut out: W,
        anchors: &TrustAnchors,
        size: u64,
        checkpoints: impl IntoIterator<Item = String>,
    ) -> Result<Self, BundleError> {
        let header = BundleHeader {
            format: FORMAT.to_owned(),
            anchors: anchors.clone(),
            size,
        };
        serde_json::to_writer(&mut out, &header).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        let mut writer = Self {
            out,
            announced: size,
            written: 0,
            checkpoints: BTreeMap::new(),
        };
        for note in checkpoints {
            writer.add_checkpoint(note)?;
        }
        writer.write_due_checkpoints()?;
        Ok(writer)
    }

    /// Adds a checkpoint; it is written right after the record at its size.
    pub fn add_checkpoint(&mut self, note: String) -> Result<(), BundleError> {
        let size = unverified_size(&note)
            .ok_or_else(|| BundleError::Checkpoint("not a checkpoint note".to_owned()))?;
        if size < self.written {
            return Err(BundleError::Checkpoint(format!(
                "size {size} lies before the {} records already written",
                self.written
            )));
        }
        self.checkpoints.entry(size).or_default().push(note);
        if size == self.written {
            self.write_due_checkpoints()?;
        }
        Ok(())
    }

    /// Writes the next record's exact bytes.
    pub fn write_record(&mut self, record: &[u8]) -> Result<(), BundleError> {
        self.written += 1;
        if record.contains(&b'\n') {
            return Err(BundleError::MultiLineRecord {
                position: self.written,
            });
        }
        self.out.write_all(record)?;
        self.out.write_all(b"\n")?;
        self.write_due_checkpoints()
    }

    fn write_due_checkpoints(&mut self) -> Result<(), BundleError> {
        if let Some(notes) = self.checkpoints.remove(&self.written) {
            for note in notes {
                self.write_checkpoint_line(note)?;
            }
        }
        Ok(())
    }

    fn write_checkpoint_line(&mut self, checkpoint: String) -> Result<(), BundleError> {
        serde_json::to_writer(&mut self.out, &CheckpointLine { checkpoint })
            .map_err(std::io::Error::from)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Writes the checkpoints beyond the last record (evidence of truncation, if any) and
    /// flushes; refuses if the record count differs from the header's.
    pub fn finish(mut self) -> Result<W, BundleError> {
        for (_, notes) in std::mem::take(&mut self.checkpoints) {
            for note in notes {
                self.write_checkpoint_line(note)?;
            }
        }
        self.out.flush()?;
        if self.written != self.announced {
            return Err(BundleError::SizeMismatch {
                announced: self.announced,
                written: self.written,
            });
        }
        Ok(self.out)
    }
}

/// The size of a checkpoint note, read without verifying it.
fn unverified_size(note: &str) -> Option<u64> {
    let text = &note[..note.rfind("\n\n")? + 1];
    umlauf_proof::checkpoint::Checkpoint::from_body(text)
        .ok()
        .map(|checkpoint| checkpoint.size)
}

/// One line of a bundle after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleItem {
    /// A record's exact bytes.
    Record(Vec<u8>),
    /// A signed checkpoint note.
    Checkpoint(String),
}

/// One line of a bundle after the header, a record lent from the reader's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleLine<'a> {
    /// A record's exact bytes, valid until the next line is read.
    Record(&'a [u8]),
    /// A signed checkpoint note.
    Checkpoint(String),
}

/// Streams a bundle from any [`BufRead`], one line at a time.
#[derive(Debug)]
pub struct BundleReader<R: BufRead> {
    input: R,
    header: BundleHeader,
    line: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> BundleReader<R> {
    /// Reads the header.
    pub fn new(mut input: R) -> Result<Self, BundleError> {
        let mut buffer = Vec::new();
        input.read_until(b'\n', &mut buffer)?;
        if buffer.last() == Some(&b'\n') {
            buffer.pop();
        }
        let header: BundleHeader = serde_json::from_slice(&buffer)
            .map_err(|error| BundleError::BadHeader(error.to_string()))?;
        if header.format != FORMAT {
            return Err(BundleError::BadHeader(format!(
                "format {}, expected {FORMAT}",
                header.format
            )));
        }
        Ok(Self {
            input,
            header,
            line: 1,
            buffer,
        })
    }

    /// The header.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The next record or checkpoint; `None` at the end.
    pub fn next_item(&mut self) -> Result<Option<BundleItem>, BundleError> {
        Ok(self.next_line()?.map(|line| match line {
            BundleLine::Record(bytes) => BundleItem::Record(bytes.to_vec()),
            BundleLine::Checkpoint(note) => BundleItem::Checkpoint(note),
        }))
    }

    /// The next record or checkpoint, the record's bytes lent rather than copied; `None` at the
    /// end.
    pub fn next_line(&mut self) -> Result<Option<BundleLine<'_>>, BundleError> {
        self.buffer.clear();
        if self.input.read_until(b'\n', &mut self.buffer)? == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        }
        if self.buffer.starts_with(b"{\"position\":") {
            return Ok(Some(BundleLine::Record(&self.buffer)));
        }
        let checkpoint: CheckpointLine =
            serde_json::from_slice(&self.buffer).map_err(|error| BundleError::BadLine {
                line: self.line,
                detail: format!("neither a record nor a checkpoint: {error}"),
            })?;
        Ok(Some(BundleLine::Checkpoint(checkpoint.checkpoint)))
    }
}

impl<R: BufRead> Iterator for BundleReader<R> {
    type Item = Result<BundleItem, BundleError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

/// Verifies a bundle with the anchors the auditor trusts, streaming it once.
///
/// Besides every finding of the [`Auditor`], reports a header naming other anchors
/// ([`FindingKind::BundleAnchorsDiffer`]) and a bundle that cannot be read to its end or holds
/// another number of records than its header says ([`FindingKind::UnreadableBundle`]).
pub fn audit_bundle<R: BufRead>(
    input: R,
    anchors: &TrustAnchors,
    options: AuditOptions,
) -> Result<Report, AuditFailure> {
    let mut auditor = Auditor::new(anchors.clone(), options);
    let unreadable = |auditor: &mut Auditor, error: &dyn std::fmt::Display| {
        auditor.record_finding(
            None,
            FindingKind::UnreadableBundle {
                detail: error.to_string(),
            },
        );
    };
    let mut reader = match BundleReader::new(input) {
        Ok(reader) => reader,
        Err(error) => {
            unreadable(&mut auditor, &error);
            return auditor.finish();
        }
    };
    if reader.header().anchors != *anchors {
        auditor.record_finding(
            None,
            FindingKind::BundleAnchorsDiffer {
                detail: reader.header().anchors.to_string(),
            },
        );
    }
    let announced = reader.header().size;
    let mut records = 0_u64;
    loop {
        let item = match reader.next_line() {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(error) => {
                unreadable(&mut auditor, &error);
                break;
            }
        };
        let pushed = match item {
            BundleLine::Record(bytes) => {
                records += 1;
                auditor.push(bytes)
            }
            BundleLine::Checkpoint(note) => auditor.add_checkpoint(&note),
        };
        if let Err(error) = pushed {
            unreadable(&mut auditor, &error);
            break;
        }
    }
    if records != announced {
        unreadable(
            &mut auditor,
            &format!("the header announces {announced} records, the bundle holds {records}"),
        );
    }
    auditor.finish()
}
