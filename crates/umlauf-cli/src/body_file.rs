//! Body files: a body's constitution as a person writes it, turned into a `ConstituteBody`.
//!
//! A body file is JSON:
//!
//! ```json
//! {"body": "it-planungsrat", "name": "IT-Planungsrat", "source": "…",
//!  "groups": [{"id": "laender", "name": "Länder"}],
//!  "members": [{"id": "DE-BY", "name": "Bayern", "kind": "voting", "groups": ["laender"]}],
//!  "weight_tables": [{"table": "koenigstein", "year": 2016, "scale": 5, "unit": "0.00001 %",
//!                     "total": "100", "weights": {"DE-BY": "15.53327"}}],
//!  "presets": {"it-planungsrat-resolution": {"states_group": "laender"}},
//!  "keys": [{"holder": "secretariat", "public_key": "<base64>", "label": "Geschäftsstelle"},
//!           {"holder": "DE-BY", "key_file": "keys/DE-BY.pem"}]}
//! ```
//!
//! Weights are decimal strings (or JSON integers) converted exactly into integer units of
//! `10^-scale`: `"3.03655"` with scale 5 is 303655 units. A weight with more decimals than the
//! scale is refused rather than rounded, and JSON numbers with a fraction are refused, since
//! they would pass through binary floating point. Where `total` is given the weights must add
//! up to exactly that. Key files are paths relative to the body file, private (the public half
//! is taken) or public PEM keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Deserializer};
use umlauf_domain::command::WeightTableSpec;
use umlauf_domain::command::{ConstituteBody, GroupSpec, KeySpec, MemberKind, MemberSpec};
use umlauf_domain::ids::{Actor, BodyId, MemberId, PublicKey, TableName, Weight};
use umlauf_domain::rule::{Preset, PresetParams};

use crate::key_file;

/// The largest scale: 10^18 units per whole still leaves room below `u64::MAX`.
pub const MAX_SCALE: u32 = 18;

/// A body file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyFile {
    /// The body's id.
    pub body: BodyId,
    /// Its name.
    pub name: String,
    /// Where the facts come from; for the reader, not recorded.
    #[serde(default)]
    pub source: Option<String>,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// Its members.
    pub members: Vec<MemberSpec>,
    /// Its weight tables, with decimal weights.
    #[serde(default)]
    pub weight_tables: Vec<WeightTableFile>,
    /// The presets it uses, with their parameters.
    #[serde(default)]
    pub presets: BTreeMap<Preset, PresetParams>,
    /// Initial keys.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// A weight table with decimal weights.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightTableFile {
    /// The table's name.
    pub table: TableName,
    /// The year it applies from.
    pub year: u16,
    /// The number of decimals one unit stands for: weights become integers of `10^-scale`.
    pub scale: u32,
    /// What one unit means, e.g. `0.00001 %`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Where the table comes from; for the reader, not recorded.
    #[serde(default)]
    pub source: Option<String>,
    /// What the weights must add up to exactly, if given.
    #[serde(default)]
    pub total: Option<Decimal>,
    /// Each member's weight.
    pub weights: BTreeMap<MemberId, Decimal>,
}

/// A key to register at constitution: a base64 public key or a PEM key file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// A member id, or `secretariat`.
    pub holder: Actor,
    /// The public key in base64.
    #[serde(default)]
    pub public_key: Option<String>,
    /// A PEM key file, relative to the body file: a private key (its public half is taken) or a
    /// public key.
    #[serde(default)]
    pub key_file: Option<String>,
    /// A label such as `CIO`.
    #[serde(default)]
    pub label: Option<String>,
}

/// A decimal number as written in a body file: a JSON string such as `"3.03655"` or a JSON
/// integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal(pub String);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Ok(Decimal(text)),
            serde_json::Value::Number(number) if number.is_u64() => Ok(Decimal(number.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "{other} is not a decimal weight: write it as a string such as \"3.03655\", \
                 so it is read exactly"
            ))),
        }
    }
}

/// Converts a non-negative decimal such as `3.03655` exactly into integer units of
/// `10^-scale`: `to_units("3.03655", 5) == Ok(303655)`. More decimals than `scale` are refused,
/// never rounded; so are signs, exponents, spaces and values beyond `u64`.
pub fn to_units(text: &str, scale: u32) -> Result<u64, String> {
    if scale > MAX_SCALE {
        return Err(format!("scale {scale} is larger than {MAX_SCALE}"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits_only = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if whole.is_empty()
        || !digits_only(whole)
        || !digits_only(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(format!(
            "{text:?} is not a decimal number like 3.03655 (digits, at most one '.')"
        ));
    }
    let decimals = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
    if decimals > scale {
        return Err(format!(
            "{text:?} has {decimals} decimals, more than the table's scale of {scale}: \
             weights are never rounded"
        ));
    }
    let overflow = || format!("{text:?} is too large for the scale {scale}");
    let unit = 10u64.pow(scale);
    let whole: u64 = whole.parse().map_err(|_| overflow())?;
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| overflow())?
    };
    let fraction = fraction
        .checked_mul(10u64.pow(scale - decimals))
        .ok_or_else(overflow)?;
    whole
        .checked_mul(unit)
        .and_then(|units| units.checked_add(fraction))
        .ok_or_else(overflow)
}

impl BodyFile {
    /// Parses a body file's text.
    pub fn parse(text: &str) -> anyhow::Result<BodyFile> {
        let file: BodyFile = serde_json::from_str(text)?;
        file.check()?;
        Ok(file)
    }

    /// Reads and parses a body file.
    pub fn read(path: &Path) -> anyhow::Result<BodyFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading body file {}", path.display()))?;
        BodyFile::parse(&text).with_context(|| format!("body file {}", path.display()))
    }

    /// Checks what can be checked before anything is signed: member and group references and the
    /// weight tables (the service checks everything again).
    fn check(&self) -> anyhow::Result<()> {
        let groups: BTreeSet<_> = self.groups.iter().map(|group| &group.id).collect();
        let mut members = BTreeSet::new();
        for member in &self.members {
            if !members.insert(&member.id) {
                bail!("member {} is listed twice", member.id);
            }
            if let Some(group) = member.groups.iter().find(|group| !groups.contains(group)) {
                bail!(
                    "member {} is in group {group}, which is not defined",
                    member.id
                );
            }
        }
        for table in &self.weight_tables {
            if let Some(stranger) = table.weights.keys().find(|id| !members.contains(id)) {
                bail!(
                    "weight table {} gives a weight to {stranger}, which is not a member",
                    table.table
                );
            }
        }
        self.weight_table_specs()?;
        Ok(())
    }

    /// The weight tables in integer units.
    pub fn weight_table_specs(&self) -> anyhow::Result<Vec<WeightTableSpec>> {
        self.weight_tables
            .iter()
            .map(|table| {
                let in_table = |detail: String| {
                    anyhow::anyhow!("weight table {} ({}): {detail}", table.table, table.year)
                };
                let weights = table
                    .weights
                    .iter()
                    .map(|(member, weight)| {
                        to_units(&weight.0, table.scale)
                            .map(|units| (member.clone(), Weight(units)))
                            .map_err(|detail| in_table(format!("{member}: {detail}")))
                    })
                    .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
                if let Some(total) = &table.total {
                    let expected = to_units(&total.0, table.scale)
                        .map_err(|detail| in_table(format!("total: {detail}")))?;
                    let sum = weights
                        .values()
                        .try_fold(0u64, |sum, weight| sum.checked_add(weight.0))
                        .ok_or_else(|| in_table("the weights overflow when added up".into()))?;
                    if sum != expected {
                        return Err(in_table(format!(
                            "the weights add up to {sum} units, not to the total {} = {expected} \
                             units",
                            total.0
                        )));
                    }
                }
                Ok(WeightTableSpec {
                    table: table.table.clone(),
                    year: table.year,
                    unit: table.unit.clone(),
                    weights,
                })
            })
            .collect()
    }

    /// The file's keys, with key files read relative to `base`.
    pub fn key_specs(&self, base: &Path) -> anyhow::Result<Vec<KeySpec>> {
        self.keys
            .iter()
            .map(|entry| {
                let public_key = match (&entry.public_key, &entry.key_file) {
                    (Some(text), None) => key_file::parse_public_key(text)?,
                    (None, Some(file)) => {
                        key_file::domain_key(&key_file::load_public_key(&base.join(file))?)
                    }
                    _ => bail!(
                        "the key of {} needs exactly one of public_key and key_file",
                        entry.holder
                    ),
                };
                Ok(KeySpec {
                    holder: entry.holder.clone(),
                    public_key,
                    label: entry.label.clone(),
                })
            })
            .collect()
    }

    /// The `ConstituteBody` action signed by `genesis_key`, with the file's keys (read relative
    /// to `base`) followed by `extra_keys`.
    pub fn constitution(
        &self,
        genesis_key: PublicKey,
        base: &Path,
        extra_keys: Vec<KeySpec>,
    ) -> anyhow::Result<ConstituteBody> {
        let mut keys = self.key_specs(base)?;
        keys.extend(extra_keys);
        Ok(ConstituteBody {
            genesis_key,
            name: self.name.clone(),
            groups: self.groups.clone(),
            members: self.members.clone(),
            weight_tables: self.weight_table_specs()?,
            presets: self.presets.clone(),
            keys,
        })
    }

    /// The voting members, in the file's order.
    pub fn voting_members(&self) -> impl Iterator<Item = &MemberSpec> {
        self.members
            .iter()
            .filter(|member| member.kind == MemberKind::Voting)
    }

    /// Each member's name.
    pub fn member_names(&self) -> BTreeMap<MemberId, String> {
        self.members
            .iter()
            .map(|member| (member.id.clone(), member.name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::to_units;

    #[test]
    fn decimals_convert_exactly_or_not_at_all() {
        assert_eq!(to_units("3.03655", 5), Ok(303_655));
        assert_eq!(to_units("0.95331", 5), Ok(95_331));
        assert_eq!(to_units("100", 5), Ok(10_000_000));
        assert_eq!(to_units("2.5", 5), Ok(250_000));
        assert_eq!(to_units("6", 0), Ok(6));
        assert_eq!(to_units("007.10", 2), Ok(710));
        for bad in [
            "", ".5", "5.", "-1", "+1", "1e3", "1,5", " 1", "1.2.3", "1.234567",
        ] {
            assert!(to_units(bad, 5).is_err(), "{bad:?}");
        }
        assert!(to_units("18446744073709551616", 0).is_err());
        assert!(to_units("184467440737095516.16", 2).is_err());
        assert!(to_units("1", 19).is_err());
    }
}
