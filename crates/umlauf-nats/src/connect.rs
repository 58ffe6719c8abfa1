//! Connecting to NATS the way a deployment needs it: a list of servers (a cluster's nodes, so a
//! client survives losing the one it talked to) and the credentials of the connecting user,
//! either a credentials file or a user and password in the URLs (`tls://user:password@host`).
//! Errors name the servers without their passwords.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use async_nats::{ConnectOptions, ServerAddr};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server list is empty or names something that is not a NATS URL.
    #[error("invalid NATS server list {urls}: {detail}")]
    InvalidServers {
        /// The list, without passwords.
        urls: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The credentials file could not be read or parsed.
    #[error("NATS credentials file {}: {source}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// No server of the list could be reached, or the server refused the connection.
    #[error("cannot connect to NATS at {urls}: {source}")]
    Connect {
        /// The servers, without passwords.
        urls: String,
        /// The client's error.
        source: async_nats::ConnectError,
    },
}

/// Parses a comma-separated list of NATS URLs (`nats://host:port`, `tls://host:port` or
/// `host:port`), in order; blanks around the commas are ignored.
pub fn servers(urls: &str) -> Result<Vec<ServerAddr>, ConnectError> {
    let invalid = |detail: String| ConnectError::InvalidServers {
        urls: format!("({} entries)", urls.split(',').count()),
        detail,
    };
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            ServerAddr::from_str(url).map_err(|error| {
                let shown = url.rsplit_once('@').map_or(url, |(_, host)| host);
                invalid(format!("{shown}: {error}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(invalid("no server given".to_owned()));
    }
    Ok(servers)
}

/// The servers of a list as they may be shown: scheme, host and port, no user or password.
pub fn redacted(servers: &[ServerAddr]) -> String {
    servers
        .iter()
        .map(|server| format!("{}://{}:{}", server.scheme(), server.host(), server.port()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The one user and password the servers' URLs carry, if any; servers that name different
/// users or passwords are refused.
fn user_and_password(servers: &[ServerAddr]) -> Result<Option<(String, String)>, ConnectError> {
    let mut found: Option<(String, String)> = None;
    for server in servers {
        let Some(user) = server.username() else {
            continue;
        };
        let pair = (
            user.to_owned(),
            server.password().unwrap_or_default().to_owned(),
        );
        match &found {
            Some(first) if *first != pair => {
                return Err(ConnectError::InvalidServers {
                    urls: redacted(servers),
                    detail: "the servers name different users or passwords; give one for all"
                        .to_owned(),
                });
            }
            _ => found = Some(pair),
        }
    }
    Ok(found)
}

/// Connects with `options` to the servers `urls` lists ([`servers`]), authenticating with the
/// credentials file (`.creds`, as `nsc` writes it) when one is given, or else with the user and
/// password the URLs carry.
pub async fn connect(
    options: ConnectOptions,
    urls: &str,
    credentials: Option<&Path>,
) -> Result<async_nats::Client, ConnectError> {
    let servers = servers(urls)?;
    let shown = redacted(&servers);
    let options =
        match credentials {
            Some(path) => options.credentials_file(path).await.map_err(|source| {
                ConnectError::Credentials {
                    path: path.to_owned(),
                    source,
                }
            })?,
            None => match user_and_password(&servers)? {
                Some((user, password)) => options.user_and_password(user, password),
                None => options,
            },
        };
    options
        .connect(servers)
        .await
        .map_err(|source| ConnectError::Connect {
            urls: shown,
            source,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_list_of_servers_is_parsed_in_order() {
        let list = servers(" nats://10.0.0.1:4222, tls://nats-2:4223 ,127.0.0.1:4224").unwrap();
        let hosts: Vec<(String, u16)> = list
            .iter()
            .map(|server| (server.host().to_owned(), server.port()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("10.0.0.1".to_owned(), 4222),
                ("nats-2".to_owned(), 4223),
                ("127.0.0.1".to_owned(), 4224)
            ]
        );
        assert!(list[1].tls_required());
    }

    #[test]
    fn an_empty_or_malformed_list_is_refused() {
        for urls in ["", " , ", "nats://host:notaport", "http://host:4222"] {
            let error = servers(urls).unwrap_err();
            assert!(
                matches!(error, ConnectError::InvalidServers { .. }),
                "{urls}: {error}"
            );
        }
    }

    #[test]
    fn one_user_in_the_urls_is_taken_and_never_shown() {
        let list = servers("tls://svc:secret@n1:4222,tls://svc:secret@n2:4222").unwrap();
        assert_eq!(
            user_and_password(&list).unwrap(),
            Some(("svc".to_owned(), "secret".to_owned()))
        );
        assert_eq!(redacted(&list), "tls://n1:4222,tls://n2:4222");
        let mixed = servers("tls://svc:secret@n1:4222,tls://other:pw@n2:4222").unwrap();
        let error = user_and_password(&mixed).unwrap_err().to_string();
        assert!(
            !error.contains("secret") && !error.contains("pw@"),
            "{error}"
        );
        let error = servers("tls://svc:secret@n1:notaport")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    /// A user and password in the URL reach the server: one that requires them lets the client
    /// in, and refuses a wrong password without showing it.
    #[tokio::test]
    async fn the_user_in_the_url_authenticates() {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut server = std::process::Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--user", "svc", "--pass", "s3cret"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server must be installed (tests/services installs it)");
        let url = |password: &str| format!("nats://svc:{password}@127.0.0.1:{port}");
        let mut connected = None;
        for _ in 0..100 {
            if let Ok(client) = connect(ConnectOptions::new(), &url("s3cret"), None).await {
                connected = Some(client);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let refused = connect(ConnectOptions::new(), &url("wrong"), None).await;
        server.kill().unwrap();
        server.wait().unwrap();
        let client = connected.expect("the client authenticates with the URL's user");
        drop(client);
        let error = refused.unwrap_err().to_string();
        assert!(!error.contains("wrong"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_credentials_file_is_named() {
        let error = connect(
            ConnectOptions::new(),
            "nats://127.0.0.1:4222",
            Some(Path::new("/nonexistent/member.creds")),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, ConnectError::Credentials { .. }), "{error}");
        assert!(error.to_string().contains("member.creds"), "{error}");
    }

    /// A list whose first server is down still connects: the client goes on to the next.
    #[tokio::test]
    async fn a_dead_first_server_is_skipped() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let client = connect(
            ConnectOptions::new().retain_servers_order(),
            &format!("nats://127.0.0.1:{port},nats://127.0.0.1:4222"),
            None,
        )
        .await
        .expect("the NATS server on 127.0.0.1:4222 must be running");
        client.flush().await.unwrap();
    }
}
