//! The service's configuration: defaults, then a TOML file, then `UMLAUF_*` environment
//! variables, then (in the CLI) flags, each layer overriding the one before.
//!
//! The defaults need no configuration at all: SQLite under `./data`, NATS on `127.0.0.1:4222`,
//! a log key created on first start, and trust on first use for the genesis key.
//! `proto/README.md` documents every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use umlauf_domain::ids::KeyId;
use umlauf_proof::VerifyingKey;
use umlauf_proof::keys::public_key_from_base64;

/// The prefix of every environment variable the configuration reads.
pub const ENV_PREFIX: &str = "UMLAUF_";

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "human" => Ok(Self::Human),
            "json" => Ok(Self::Json),
            other => Err(ConfigError::Invalid {
                key: "log_format",
                detail: format!("{other:?} is neither \"human\" nor \"json\""),
            }),
        }
    }
}

/// Everything `umlauf serve` can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` (created if missing) or `postgres://user@host:port/database`.
    pub database_url: String,
    /// PostgreSQL only: the schema holding the tables (created if missing); the connection's
    /// search path if unset.
    pub database_schema: Option<String>,
    /// The size of the database connection pool.
    pub database_max_connections: u32,
    /// The NATS server(s) to connect to: one URL, or a comma-separated list of a cluster's
    /// nodes.
    pub nats_url: String,
    /// A NATS credentials file (`.creds`) to authenticate with; none: connect without.
    pub nats_credentials: Option<PathBuf>,
    /// The log's Ed25519 private key, PKCS#8 PEM; created (mode 0600) on first start if missing.
    /// Every replica of a deployment is given the same file.
    pub log_key_file: PathBuf,
    /// The log's origin: the name in its checkpoints and of its key (C2SP). Replicas of one
    /// log share it.
    pub log_origin: String,
    /// The deployment's genesis keys, standard base64 of raw Ed25519 public keys. None: trust on
    /// first use (the first constitution's key becomes the genesis key).
    pub genesis_keys: Vec<String>,
    /// The root token of every subject (`<root>.v1.…`).
    pub subject_root: String,
    /// The prefix of the JetStream stream names (`<prefix>_LOG`, …).
    pub stream_prefix: String,
    /// Replicas of each JetStream stream (3 in a cluster of three).
    pub stream_replicas: usize,
    /// The largest envelope accepted, in bytes; lowered at start if the NATS server's
    /// `max_payload` could not carry the records and replies of envelopes this large.
    pub max_envelope_bytes: usize,
    /// How far a command's `issued_at` may be from the service's clock, in seconds.
    pub clock_skew_seconds: u64,
    /// `human` or `json`.
    pub log_format: LogFormat,
    /// How often the deadline scheduler looks for circulations past their deadline, in
    /// milliseconds.
    pub deadline_check_ms: u64,
    /// How often the relay looks for records appended by other replicas, in milliseconds.
    pub relay_poll_ms: u64,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (`IP:port`; port 0 picks one);
    /// empty: not served.
    pub ops_address: String,
    /// How long before the deadline electors who have not answered are reminded (`24h`, `90m`,
    /// `2d`, or seconds); `0` or empty: no reminders.
    pub reminder_before: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/umlauf.db".into(),
            database_schema: None,
            database_max_connections: 16,
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_credentials: None,
            log_key_file: PathBuf::from("./data/log-key.pem"),
            log_origin: "umlauf.localhost/log".into(),
            genesis_keys: Vec::new(),
            subject_root: "umlauf".into(),
            stream_prefix: "UMLAUF".into(),
            stream_replicas: 1,
            max_envelope_bytes: 384 * 1024,
            clock_skew_seconds: 300,
            log_format: LogFormat::Human,
            deadline_check_ms: 1_000,
            relay_poll_ms: 1_000,
            ops_address: "127.0.0.1:9464".into(),
            reminder_before: "24h".into(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file {path}: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A key's value cannot be used.
    #[error("invalid configuration {key}: {detail}")]
    Invalid {
        /// The key, or the environment variable.
        key: &'static str,
        /// Why.
        detail: String,
    },
}

impl Config {
    /// The configuration from the defaults, the file at `path` (if given, or else named by
    /// `UMLAUF_CONFIG`), and this process's `UMLAUF_*` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let from_env = env
            .iter()
            .find(|(name, _)| name == "UMLAUF_CONFIG")
            .map(|(_, value)| PathBuf::from(value));
        let path = path.map(Path::to_path_buf).or(from_env);
        let text = match &path {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        Self::from_sources(
            text.as_deref()
                .map(|text| (path.as_deref().unwrap_or(Path::new("")), text)),
            env,
        )
    }

    /// The configuration from the defaults, a file's text, and environment variables.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some((path, text)) => toml::from_str(text).map_err(|error| ConfigError::Parse {
                path: path.to_path_buf(),
                detail: error.to_string(),
            })?,
            None => Self::default(),
        };
        for (name, value) in env {
            if let Some(key) = name.strip_prefix(ENV_PREFIX) {
                config.set_from_env(key, value)?;
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Applies one `UMLAUF_<KEY>` variable; variables naming no key are ignored (others use the
    /// prefix too, e.g. the tests' `UMLAUF_TEST_DATABASE_URL`).
    fn set_from_env(&mut self, key: &str, value: String) -> Result<(), ConfigError> {
        fn number<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Invalid {
                key,
                detail: format!("{value:?} is not a number"),
            })
        }
        match key {
            "DATABASE_URL" => self.database_url = value,
            "DATABASE_SCHEMA" => {
                self.database_schema = Some(value).filter(|schema| !schema.is_empty());
            }
            "DATABASE_MAX_CONNECTIONS" => {
                self.database_max_connections = number("UMLAUF_DATABASE_MAX_CONNECTIONS", &value)?;
            }
            "NATS_URL" => self.nats_url = value,
            "NATS_CREDENTIALS" => {
                self.nats_credentials =
                    Some(PathBuf::from(value)).filter(|path| !path.as_os_str().is_empty());
            }
            "LOG_KEY_FILE" => self.log_key_file = PathBuf::from(value),
            "LOG_ORIGIN" => self.log_origin = value,
            "GENESIS_KEYS" => {
                self.genesis_keys = value
                    .split(',')
                    .map(str::trim)
                    .filter(|key| !key.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "SUBJECT_ROOT" => self.subject_root = value,
            "STREAM_PREFIX" => self.stream_prefix = value,
            "STREAM_REPLICAS" => self.stream_replicas = number("UMLAUF_STREAM_REPLICAS", &value)?,
            "MAX_ENVELOPE_BYTES" => {
                self.max_envelope_bytes = number("UMLAUF_MAX_ENVELOPE_BYTES", &value)?;
            }
            "CLOCK_SKEW_SECONDS" => {
                self.clock_skew_seconds = number("UMLAUF_CLOCK_SKEW_SECONDS", &value)?;
            }
            "LOG_FORMAT" => self.log_format = value.parse()?,
            "DEADLINE_CHECK_MS" => {
                self.deadline_check_ms = number("UMLAUF_DEADLINE_CHECK_MS", &value)?;
            }
            "RELAY_POLL_MS" => self.relay_poll_ms = number("UMLAUF_RELAY_POLL_MS", &value)?,
            "OPS_ADDRESS" => self.ops_address = value,
            "REMINDER_BEFORE" => self.reminder_before = value,
            _ => {}
        }
        Ok(())
    }

    /// Checks every key; [`Config::load`] and [`Config::from_sources`] call it, and so should
    /// anyone who changes a loaded configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let token = |key: &'static str, value: &str| {
            let ok = !value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    key,
                    detail: format!("{value:?} must be one token of A-Z, a-z, 0-9, '-' and '_'"),
                })
            }
        };
        token("subject_root", &self.subject_root)?;
        if self.log_origin.is_empty()
            || !self
                .log_origin
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '+')
        {
            return Err(ConfigError::Invalid {
                key: "log_origin",
                detail: format!(
                    "{:?} must be non-empty printable ASCII without spaces or '+'",
                    self.log_origin
                ),
            });
        }
        token("stream_prefix", &self.stream_prefix)?;
        umlauf_nats::connect::servers(&self.nats_url).map_err(|error| ConfigError::Invalid {
            key: "nats_url",
            detail: error.to_string(),
        })?;
        if self.database_max_connections < 2 {
            return Err(ConfigError::Invalid {
                key: "database_max_connections",
                detail: "must be at least 2 (the writer holds one)".into(),
            });
        }
        if self.max_envelope_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "max_envelope_bytes",
                detail: "must be positive".into(),
            });
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(ConfigError::Invalid {
                key: "stream_replicas",
                detail: "must be 1 to 5".into(),
            });
        }
        if self.deadline_check_ms == 0 || self.relay_poll_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "deadline_check_ms",
                detail: "intervals must be positive".into(),
            });
        }
        self.ops_socket_address()?;
        self.reminder_before_duration()?;
        self.genesis_verifying_keys().map(drop)
    }

    /// The configured genesis keys, parsed.
    pub fn genesis_verifying_keys(&self) -> Result<Vec<(KeyId, VerifyingKey)>, ConfigError> {
        self.genesis_keys
            .iter()
            .map(|text| {
                let key = public_key_from_base64(text).map_err(|error| ConfigError::Invalid {
                    key: "genesis_keys",
                    detail: format!("{text:?}: {error}"),
                })?;
                Ok((
                    KeyId::of(&umlauf_domain::ids::PublicKey(key.to_bytes())),
                    key,
                ))
            })
            .collect()
    }

    /// Where the log's verifier key is written: the log key file's path with the extension
    /// `.vkey`.
    pub fn log_vkey_file(&self) -> PathBuf {
        self.log_key_file.with_extension("vkey")
    }

    /// [`Config::deadline_check_ms`] as a duration.
    pub fn deadline_check_interval(&self) -> Duration {
        Duration::from_millis(self.deadline_check_ms)
    }

    /// [`Config::ops_address`] parsed; `None` when empty (no operations endpoint).
    pub fn ops_socket_address(&self) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let address = self.ops_address.trim();
        if address.is_empty() {
            return Ok(None);
        }
        address.parse().map(Some).map_err(|_| ConfigError::Invalid {
            key: "ops_address",
            detail: format!("{address:?} is not IP:port (e.g. 127.0.0.1:9464), nor empty"),
        })
    }

    /// [`Config::reminder_before`] as a duration; `None` when reminders are off.
    pub fn reminder_before_duration(&self) -> Result<Option<Duration>, ConfigError> {
        crate::reminders::parse_before(&self.reminder_before).map_err(|detail| {
            ConfigError::Invalid {
                key: "reminder_before",
                detail,
            }
        })
    }

    /// [`Config::relay_poll_ms`] as a duration.
    pub fn relay_poll_interval(&self) -> Duration {
        Duration::from_millis(self.relay_poll_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_need_nothing() {
        let config = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.database_url, "sqlite://./data/umlauf.db");
        assert_eq!(config.max_envelope_bytes, 393_216);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file =
            "nats_url = \"nats://10.0.0.1:4222\"\nsubject_root = \"a\"\nclock_skew_seconds = 60\n";
        let config = Config::from_sources(
            Some((Path::new("umlauf.toml"), file)),
            env(&[
                ("UMLAUF_SUBJECT_ROOT", "b"),
                ("UMLAUF_TEST_DATABASE_URL", "ignored"),
                ("UMLAUF_LOG_FORMAT", "json"),
                ("UMLAUF_NATS_CREDENTIALS", "/etc/umlauf/service.creds"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.nats_credentials.as_deref(),
            Some(Path::new("/etc/umlauf/service.creds"))
        );
        assert_eq!(config.nats_url, "nats://10.0.0.1:4222");
        assert_eq!(config.subject_root, "b");
        assert_eq!(config.clock_skew_seconds, 60);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
        let cases: [Case<'_>; 6] = [
            (Some("unknown_key = 1"), &[], "unknown field"),
            (None, &[("UMLAUF_SUBJECT_ROOT", "a.b")], "subject_root"),
            (None, &[("UMLAUF_CLOCK_SKEW_SECONDS", "x")], "CLOCK_SKEW"),
            (None, &[("UMLAUF_GENESIS_KEYS", "nope")], "genesis_keys"),
            (None, &[("UMLAUF_LOG_FORMAT", "xml")], "log_format"),
            (
                None,
                &[("UMLAUF_NATS_URL", "nats://a:1,http://b:2")],
                "nats_url",
            ),
        ];
        for (file, vars, expected) in cases {
            let error =
                Config::from_sources(file.map(|text| (Path::new("f.toml"), text)), env(vars))
                    .unwrap_err()
                    .to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
