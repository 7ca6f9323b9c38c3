//! How the NATS transport authenticates to the server and sets up TLS: the server's own
//! mechanisms through `async_nats::ConnectOptions` (a `.creds` file, an nkey seed, user and
//! password, a token; a CA, a client certificate). Secrets are read from files, never from
//! the command line, and re-read at every connection, so a rotated file takes effect on the
//! next reconnect. This is who may talk to the server; what a frame says is authenticated
//! separately, end to end ([`super::nats_frame`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Server credentials and TLS options (all optional; credentials may also be in the URL).
#[derive(Debug, Clone, Default)]
pub struct NatsAuth {
    /// A NATS `.creds` file (user JWT and nkey seed).
    pub creds: Option<PathBuf>,
    /// A file holding an nkey seed (`SU…`).
    pub nkey: Option<PathBuf>,
    /// User name, with `password_file`.
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A file holding an authentication token.
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA(s) to trust for the server's certificate (implies TLS).
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate and key for mutual TLS (implies TLS).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// A credentials file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {why}")]
pub struct AuthFileError {
    pub what: &'static str,
    pub path: PathBuf,
    pub why: String,
}

fn read_secret(what: &'static str, path: &Path) -> Result<String, AuthFileError> {
    let err = |why: String| AuthFileError { what, path: path.to_path_buf(), why };
    let s = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let s = s.trim().to_string();
    if s.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(s)
}

fn readable(what: &'static str, path: &Path) -> Result<(), AuthFileError> {
    std::fs::File::open(path).map(drop).map_err(|e| AuthFileError {
        what,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

impl NatsAuth {
    /// Checks that every file given can be read (so a typo fails at start, not at connect).
    pub fn check(&self) -> Result<(), AuthFileError> {
        for (what, p) in [
            ("--nats-creds", &self.creds),
            ("--nats-nkey", &self.nkey),
            ("--nats-password-file", &self.password_file),
            ("--nats-token-file", &self.token_file),
            ("--nats-tls-ca", &self.tls_ca),
            ("--nats-tls-cert", &self.tls_cert),
            ("--nats-tls-key", &self.tls_key),
        ] {
            if let Some(p) = p {
                readable(what, p)?;
            }
        }
        Ok(())
    }

    /// Connection options for the transport's client.
    pub async fn options(&self) -> Result<async_nats::ConnectOptions, AuthFileError> {
        let mut o =
            async_nats::ConnectOptions::new().name("atomik sync").connection_timeout(Duration::from_secs(3));
        if let Some(p) = &self.creds {
            o = o.credentials_file(p).await.map_err(|e| AuthFileError {
                what: "--nats-creds",
                path: p.clone(),
                why: e.to_string(),
            })?;
        }
        if let Some(p) = &self.nkey {
            o = o.nkey(read_secret("--nats-nkey", p)?);
        }
        if let (Some(user), Some(p)) = (&self.user, &self.password_file) {
            o = o.user_and_password(user.clone(), read_secret("--nats-password-file", p)?);
        }
        if let Some(p) = &self.token_file {
            o = o.token(read_secret("--nats-token-file", p)?);
        }
        if let Some(ca) = &self.tls_ca {
            o = o.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            o = o.add_client_certificate(cert.clone(), key.clone());
        }
        if self.tls_ca.is_some() || self.tls_cert.is_some() {
            o = o.require_tls(true);
        }
        Ok(o)
    }
}
