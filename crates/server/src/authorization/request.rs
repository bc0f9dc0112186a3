//! The checked authorization request, serialisable so it can be kept
//! server-side between the pages of one authorization, and the ways a
//! request is refused.

use std::{collections::HashMap, sync::Arc};

use gatehouse_storage::{model::Client, StoreError};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    i18n::{Msg, UiLocales},
    oauth::{ClientId, ErrorCode, Jkt, ScopeSet},
    pkce::CodeChallenge,
};

/// How the response parameters travel back (OAuth 2.0 Multiple Response
/// Type Encoding Practices; OAuth 2.0 Form Post Response Mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Query,
    FormPost,
}

/// The `prompt` values (OIDC Core 3.1.2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// A checked authorization request: every parameter Gatehouse acts on, in
/// its typed form. Its client is named by id; the client itself travels
/// beside it ([`Checked`]).
///
/// Kept as JSON in a transaction, so one release must read what the
/// previous one wrote (a rolling upgrade): a field added later gets
/// `#[serde(default)]` with the value that asks nothing more of the user
/// than before, and unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    #[serde(default)]
    pub response_mode: ResponseMode,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(with = "scope_string")]
    pub scope: ScopeSet,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default, with = "challenge_string")]
    pub code_challenge: Option<CodeChallenge>,
    /// The audience of the resource server the tokens are for, if any.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub prompt: Prompt,
    #[serde(default)]
    pub max_age: Option<i64>,
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The subject of a valid `id_token_hint`.
    #[serde(default)]
    pub hint_sub: Option<String>,
    #[serde(default)]
    pub acr_values: Option<String>,
    /// The levels asked for, parsed from `acr_values` and `claims`.
    #[serde(default)]
    pub acr: super::levels::AcrRequest,
    /// The languages the client asked the pages in (OIDC Core 3.1.2.1),
    /// honoured by every page of the sign-in (`crate::i18n`).
    #[serde(default, skip_serializing_if = "UiLocales::is_empty")]
    pub ui_locales: UiLocales,
    /// The DPoP key the code is bound to (RFC 9449 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<Jkt>,
    /// It came through `/par` (RFC 9126): checked again against a
    /// requirement to push switched on since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pushed: bool,
    /// The device authorization (RFC 8628) this request decides, made at
    /// `/device`; it has no redirect URI (empty) and ends with the user's
    /// decision recorded on it instead of a code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<super::device::DeviceRequest>,
}

/// A checked request and the client that sent it.
#[derive(Clone, Debug)]
pub struct Checked {
    pub request: AuthorizationRequest,
    pub client: Arc<Client>,
}

/// The parameters of an authorization request as received: each name's
/// first value (empty values count as absent), the first repeated name,
/// and whether there were more than the edge accepts; where it was sent,
/// and, for one sent as a request object, the object (its parameters are
/// then the object's).
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub params: HashMap<String, String>,
    pub duplicate: Option<String>,
    pub too_many: bool,
    pub via: Via,
    pub object: Option<super::request_object::RequestObject>,
}

/// Where an authorization request was sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Via {
    /// To `/authorize`, by the browser.
    #[default]
    Authorize,
    /// To `/par`, by the authenticated client (RFC 9126 2.1).
    Pushed,
}

impl Received {
    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Where an error goes.
#[derive(Debug)]
pub enum Rejection {
    /// No trustworthy redirect URI: show a page with this message.
    Page(Msg),
    /// The store failed before a redirect URI could be trusted.
    Store(StoreError),
    /// Anything else failed (logged, answered as a server error).
    Internal(String),
    /// Back to the client: at once, or, for a client that registered
    /// itself, through a page with a link (see [`Confirm`]).
    Redirect {
        to: String,
        mode: ResponseMode,
        state: Option<String>,
        code: ErrorCode,
        description: String,
        confirm: Option<Confirm>,
    },
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        Rejection::Store(e)
    }
}

/// Who gets an error through a page instead of an automatic redirect: a
/// client registered through the registration endpoint, whose redirect
/// URIs nobody vouched for. Sending every browser there on any malformed
/// request would make Gatehouse an open redirector (RFC 9700 4.11.2).
#[derive(Debug, Clone)]
pub struct Confirm {
    pub client_name: String,
}

impl Confirm {
    /// `Some` for a dynamically registered client.
    pub fn for_client(client: &Client) -> Option<Confirm> {
        client.dynamically_registered().then(|| Confirm {
            client_name: client.name.clone(),
        })
    }
}

/// The host a redirect URI points to, as shown to the user next to the
/// client's name (RFC 7591 5): host and explicit port; internationalized
/// names in their ASCII form, so look-alikes stay visible. A URI without a
/// host (a native app's private-use scheme) shows its scheme.
pub fn redirect_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => String::new(),
    }
}

/// A scope set kept as its space-separated string.
mod scope_string {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use crate::oauth::ScopeSet;

    pub fn serialize<S: Serializer>(s: &ScopeSet, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<ScopeSet, D::Error> {
        let s = String::deserialize(de)?;
        ScopeSet::parse(&s).map_err(D::Error::custom)
    }
}

/// A code challenge kept as its string (it was checked when received).
mod challenge_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::pkce::CodeChallenge;

    pub fn serialize<S: Serializer>(c: &Option<CodeChallenge>, ser: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => ser.serialize_some(c.as_str()),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<CodeChallenge>, D::Error> {
        Ok(Option::<String>::deserialize(de)?.map(|c| CodeChallenge::stored(&c)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_checked_request_survives_storage() {
        let req = AuthorizationRequest {
            client_id: "c1".into(),
            redirect_uri: "https://app.example/cb".into(),
            response_mode: ResponseMode::FormPost,
            state: Some("s".into()),
            scope: ScopeSet::parse("openid profile").unwrap(),
            nonce: Some("n".into()),
            code_challenge: CodeChallenge::from_request(
                Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
                Some("S256"),
            )
            .unwrap(),
            resource: Some("https://api.example".into()),
            prompt: Prompt {
                login: true,
                ..Prompt::default()
            },
            max_age: Some(0),
            login_hint: None,
            hint_sub: Some("u1".into()),
            acr_values: None,
            acr: Default::default(),
            ui_locales: UiLocales::parse("fr-CA en"),
            dpop_jkt: Jkt::parse("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"),
            pushed: true,
            device: None,
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""scope":"openid profile""#), "{json}");
        assert!(json.contains(r#""ui_locales":"fr-CA en""#), "{json}");
        assert!(json.contains(r#""response_mode":"form_post""#), "{json}");
        let back: AuthorizationRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }

    /// A request as the first release with transactions stored it reads
    /// back: the format is a compatibility promise across a rolling upgrade.
    #[test]
    fn a_request_stored_by_the_first_release_reads() {
        let v1 = r#"{"client_id":"c1","redirect_uri":"https://app.example/cb","response_mode":"query","state":"s","scope":"openid profile","nonce":"n","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","resource":null,"prompt":{"none":false,"login":true,"consent":false,"select_account":false},"max_age":300,"login_hint":"erin","hint_sub":null,"acr_values":null}"#;
        let req: AuthorizationRequest = serde_json::from_str(v1).unwrap();
        assert_eq!(req.client_id, "c1");
        assert_eq!(req.scope.to_string(), "openid profile");
        assert!(req.prompt.login && !req.prompt.consent);
        assert_eq!(req.max_age, Some(300));
        assert!(req.ui_locales.is_empty());
        assert_eq!(
            req.code_challenge.as_ref().map(|c| c.as_str()),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
        );
    }

    /// Optional fields missing from a stored request (written before they
    /// existed) take their defaults; unknown ones are ignored.
    #[test]
    fn missing_optional_fields_take_safe_defaults() {
        let minimal = r#"{"client_id":"c1","redirect_uri":"https://app.example/cb","scope":"openid","later":1}"#;
        let req: AuthorizationRequest = serde_json::from_str(minimal).unwrap();
        assert_eq!(req.response_mode, ResponseMode::Query);
        assert_eq!(req.prompt, Prompt::default());
        assert!(req.code_challenge.is_none() && req.nonce.is_none() && req.max_age.is_none());
    }
}
