//! Protocol vocabulary as types: grant types, client authentication
//! methods, scopes, redirect URIs, and the RFC 6749 error codes.

use std::{collections::BTreeSet, fmt};

use url::Url;

pub use gatehouse_protocol::{
    AuthMethod, ClientId, GrantType, Jkt, TokenFormat, TokenTypeUri, UserId,
};

/// RFC 6749 5.2 / OIDC Core 3.1.2.6 / RFC 8707 / RFC 6750 error codes. `Display` is the wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    InvalidToken,
    InvalidRedirectUri,
    InvalidClientMetadata,
    UnsupportedTokenType,
    RequestNotSupported,
    RequestUriNotSupported,
    /// RFC 9101 6.3 (and OIDC Core 3.1.2.6).
    InvalidRequestObject,
    InsufficientScope,
    /// OpenID Connect Unmet Authentication Requirements 1.0.
    UnmetAuthenticationRequirements,
    /// RFC 9449 12.2.
    InvalidDpopProof,
    /// RFC 9449 12.2.
    UseDpopNonce,
    /// RFC 8628 3.5: the user has not decided yet.
    AuthorizationPending,
    /// RFC 8628 3.5: polled too often; the interval grows by 5 seconds.
    SlowDown,
    /// RFC 8628 3.5: the device code expired.
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signing algorithms accepted on private_key_jwt client assertions
/// (RFC 7523; advertised in discovery).
pub const ASSERTION_ALGS: [gatehouse_keys::Alg; 4] = [
    gatehouse_keys::Alg::RS256,
    gatehouse_keys::Alg::PS256,
    gatehouse_keys::Alg::ES256,
    gatehouse_keys::Alg::EdDSA,
];

/// The OIDC scopes Gatehouse knows without any resource server.
pub const STANDARD_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A set of scopes, kept sorted so the string form is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-separated scope string (RFC 6749 3.3). Refuses
    /// characters outside the RFC's scope-token grammar.
    pub fn parse(s: &str) -> Result<ScopeSet, String> {
        let mut set = BTreeSet::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err("scope contains a character RFC 6749 3.3 does not allow".to_owned());
            }
            set.insert(tok.to_owned());
        }
        Ok(ScopeSet(set))
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
    pub fn of<'a>(it: impl IntoIterator<Item = &'a str>) -> ScopeSet {
        ScopeSet(it.into_iter().map(str::to_owned).collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

/// Validates a redirect URI for registration: absolute, no fragment, https
/// unless on a loopback host (RFC 8252 7.3) or a private-use scheme for
/// native apps (RFC 8252 7.1).
pub fn validate_redirect_uri(s: &str) -> Result<(), String> {
    let u = Url::parse(s).map_err(|e| format!("redirect URI {s:?} is not an absolute URL: {e}"))?;
    if u.fragment().is_some() {
        return Err(format!("redirect URI {s:?} must not contain a fragment"));
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(format!(
            "redirect URI {s:?} must use https (http only on loopback)"
        )),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(format!("redirect URI {s:?} has an unsupported scheme")),
    }
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Does the requested redirect URI match a registered one? Exact string
/// comparison (OIDC Core 3.1.2.1), except that the port of an http
/// loopback IP redirect may vary (RFC 8252 7.3).
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if req.scheme() != "http"
        || !matches!(
            req.host(),
            Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_))
        )
        || !is_loopback(&req)
    {
        return false;
    }
    // The requested string must be exactly what a registered URI becomes with another port.
    registered.iter().any(|r| {
        let Ok(mut reg) = Url::parse(r) else {
            return false;
        };
        if reg.scheme() != "http" || reg.host() != req.host() {
            return false;
        }
        if reg.set_port(req.port()).is_err() {
            return false;
        }
        reg.as_str() == requested
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_port_may_vary_but_nothing_else() {
        let reg = vec![
            "http://127.0.0.1/cb".to_owned(),
            "https://app.example/cb".to_owned(),
        ];
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1:53122/cb"));
        assert!(redirect_uri_matches(&reg, "https://app.example/cb"));
        for bad in [
            "http://127.0.0.1:53122/cb/",
            "http://127.0.0.1:53122/cb?x=1",
            "http://127.0.0.1:53122/CB",
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/cb#f",
            "https://APP.example/cb",
            "https://app.example/cb/../cb",
            "https://app.example/%63b",
            "https://evil@app.example/cb",
            "https://app.example.evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://localhost:1234/cb",
        ] {
            assert!(!redirect_uri_matches(&reg, bad), "{bad} must not match");
        }
    }

    #[test]
    fn scope_grammar() {
        assert_eq!(
            ScopeSet::parse("openid  email openid").map(|s| s.to_string()),
            Ok("email openid".to_owned())
        );
        assert!(ScopeSet::parse("open\"id").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
    }
}
