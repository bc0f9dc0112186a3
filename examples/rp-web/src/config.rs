//! The example app's configuration: the issuer, its client registration and
//! where it listens, from `RP_*` environment variables or built in code.

use std::net::SocketAddr;

use url::Url;

/// How the app reaches Gatehouse and where it is reachable itself.
#[derive(Clone, Debug)]
pub struct Config {
    /// Gatehouse's issuer URL (`RP_ISSUER`), e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    /// The client id Gatehouse gave this app (`RP_CLIENT_ID`).
    pub client_id: String,
    /// The client secret (`RP_CLIENT_SECRET`); `None` for a public client.
    pub client_secret: Option<String>,
    /// The address to listen on (`RP_LISTEN`, default `127.0.0.1:3000`).
    pub listen: SocketAddr,
    /// The app's own public URL (`RP_BASE_URL`, default `http://<RP_LISTEN>`).
    /// The redirect URI is `<base>/callback` and the post-logout redirect
    /// URI is `<base>/`; both must be registered with Gatehouse exactly.
    pub base_url: String,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

impl Config {
    /// Reads `RP_ISSUER`, `RP_CLIENT_ID`, `RP_CLIENT_SECRET`, `RP_LISTEN` and
    /// `RP_BASE_URL`, and checks the result.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let listen_raw = var("RP_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_raw
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::Invalid {
                name: "RP_LISTEN",
                reason: e.to_string(),
            })?;
        let config = Config {
            issuer: var("RP_ISSUER").ok_or(ConfigError::Missing("RP_ISSUER"))?,
            client_id: var("RP_CLIENT_ID").ok_or(ConfigError::Missing("RP_CLIENT_ID"))?,
            client_secret: var("RP_CLIENT_SECRET"),
            listen,
            base_url: var("RP_BASE_URL").unwrap_or_else(|| format!("http://{listen}")),
        };
        config.check()?;
        Ok(config)
    }

    /// Checks the URLs: the issuer and the base URL must be absolute http(s)
    /// URLs without query or fragment.
    pub fn check(&self) -> Result<(), ConfigError> {
        check_url("RP_ISSUER", &self.issuer)?;
        check_url("RP_BASE_URL", &self.base_url)?;
        if self.client_id.is_empty() {
            return Err(ConfigError::Missing("RP_CLIENT_ID"));
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The redirect URI to register: `<base>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.base())
    }

    /// The post-logout redirect URI to register: `<base>/`.
    pub fn home_uri(&self) -> String {
        format!("{}/", self.base())
    }

    /// Whether the app is served over https (its cookie is then `Secure`).
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

fn check_url(name: &'static str, value: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name,
        reason: reason.to_owned(),
    };
    let url = Url::parse(value).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str, base: &str) -> Config {
        Config {
            issuer: issuer.into(),
            client_id: "c".into(),
            client_secret: None,
            listen: ([127, 0, 0, 1], 3000).into(),
            base_url: base.into(),
        }
    }

    #[test]
    fn derived_uris() {
        let c = config("http://127.0.0.1:8080", "http://127.0.0.1:3000/");
        assert!(c.check().is_ok());
        assert_eq!(c.redirect_uri(), "http://127.0.0.1:3000/callback");
        assert_eq!(c.home_uri(), "http://127.0.0.1:3000/");
        assert!(!c.is_https());
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(config("not a url", "http://a/").check().is_err());
        assert!(config("ftp://a", "http://a/").check().is_err());
        assert!(config("http://a", "http://a/?x=1").check().is_err());
    }
}
