//! Property-based fuzz target for dynamic registration's metadata parsing
//! and validation (RFC 7591 2; the path of `POST /register` and
//! `PUT /register/{id}` from the body to a validated [`Client`]).
//!
//! Properties: arbitrary bytes and arbitrary JSON are refused with
//! `invalid_client_metadata` or `invalid_redirect_uri`, never a panic or an
//! internal error; metadata that is accepted yields a client whose every
//! member keeps the rules (redirect URIs valid, RFC 6749 3.3 scope tokens,
//! a known auth method and grant types, a secret exactly when the method
//! uses one). Case counts are small enough for CI; `PROPTEST_CASES`
//! runs them longer (docs/operations.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use axum::http::HeaderValue;
use gatehouse_keys::{Alg, Kek, SecretHasher, SecretSealer};
use proptest::prelude::*;

use super::*;
use crate::{
    error::OAuthError,
    oauth::{validate_redirect_uri, AuthMethod},
};

fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn crypto() -> &'static (SecretHasher, SecretSealer) {
    static C: OnceLock<(SecretHasher, SecretSealer)> = OnceLock::new();
    C.get_or_init(|| {
        let kek = Kek::generate();
        (SecretHasher::new(&kek), SecretSealer::new(&kek))
    })
}

/// A client's public signing JWK, as a registrant would send it.
fn signing_jwk() -> &'static Value {
    static JWK: OnceLock<Value> = OnceLock::new();
    JWK.get_or_init(|| {
        let g = gatehouse_keys::generate(Alg::ES256, "client-key", &Kek::generate()).unwrap();
        serde_json::from_str(&g.public_jwk).unwrap()
    })
}

fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h
}

/// The registration path from body to client, as the handlers run it.
fn register_body(body: &[u8]) -> Result<(Client, Option<String>), AppError> {
    // What an initial access token without a policy allows.
    register_body_with(body, &RegistrationPolicy::default())
}

/// The same, under `policy`, with the outbound rules of a production issuer.
fn register_body_with(
    body: &[u8],
    policy: &RegistrationPolicy,
) -> Result<(Client, Option<String>), AppError> {
    let (hasher, sealer) = crypto();
    let m = parse(&json_headers(), body)?;
    let outbound = crate::outbound::OutboundPolicy::default();
    let (client, secret) = build(spec(m, policy)?, hasher, sealer, 1_700_000_000, &outbound)
        .map_err(metadata_error)?;
    check_policy(&client, policy, None).map_err(metadata_error)?;
    Ok((client, secret))
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings that sit on the edges of what registration accepts.
fn tricky_uri() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "https://rp.example/cb",
            "https://rp.example/cb#fragment",
            "http://localhost:8080/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9/cb",
            "http://rp.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pass@rp.example/",
            "https://",
            "//rp.example/cb",
            "/relative",
            "",
            "https://rp.example/\u{0}",
            "https://xn--80ak6aa92e.com/",
        ])
        .prop_map(str::to_owned),
        "(https?|[a-z.]{1,8}):/{0,3}[ -~]{0,30}",
        ".{0,40}",
    ]
}

/// A value for a metadata member: usually of the right type with
/// plausible or hostile content, sometimes any JSON.
fn member(name: &'static str) -> BoxedStrategy<Value> {
    let words = |w: Vec<&'static str>| prop::sample::select(w).prop_map(Value::from);
    let right: BoxedStrategy<Value> = match name {
        "redirect_uris" | "post_logout_redirect_uris" => prop::collection::vec(tricky_uri(), 0..3)
            .prop_map(|v| json!(v))
            .boxed(),
        "jwks_uri" | "backchannel_logout_uri" => tricky_uri().prop_map(Value::from).boxed(),
        "grant_types" => prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "implicit",
                    "password",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer",
                ])
                .prop_map(str::to_owned),
                ".{0,12}",
            ],
            0..4,
        )
        .prop_map(|v| json!(v))
        .boxed(),
        "response_types" => words(vec!["code", "token", "id_token", "code id_token", ""])
            .prop_map(|v| json!([v]))
            .boxed(),
        "token_endpoint_auth_method" => words(vec![
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none",
            "tls_client_auth",
            "",
        ])
        .boxed(),
        "token_endpoint_auth_signing_alg" | "id_token_signed_response_alg" => words(vec![
            "RS256",
            "PS256",
            "ES256",
            "EdDSA",
            "HS256",
            "HS512",
            "none",
            "RSA-OAEP-256",
            "ECDH-ES+A256KW",
            "rs256",
        ])
        .boxed(),
        "scope" => prop_oneof!["[a-z:._ -]{0,40}", "[ -~\t\n\u{80}-\u{10FFFF}]{0,30}",]
            .prop_map(Value::from)
            .boxed(),
        "jwks" => prop_oneof![
            Just(json!({"keys": [signing_jwk()]})),
            prop::collection::vec(json_value(), 0..3).prop_map(|k| json!({"keys": k})),
        ]
        .boxed(),
        "client_name" => prop_oneof!["[ -~]{0,220}", ".{0,30}"]
            .prop_map(Value::from)
            .boxed(),
        _ => json_value().boxed(),
    };
    prop_oneof![5 => right, 1 => json_value()].boxed()
}

const MEMBERS: [&str; 13] = [
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "id_token_signed_response_alg",
    "jwks",
    "jwks_uri",
    "backchannel_logout_uri",
    "token_endpoint_auth_signing_alg",
    "software_statement",
];

/// A metadata object with any subset of the members, half the time laid
/// over a valid registration so that most of them reach validation.
fn metadata() -> impl Strategy<Value = Value> {
    let members = MEMBERS
        .iter()
        .map(|&name| prop::option::weighted(0.4, member(name)).prop_map(move |v| (name, v)))
        .collect::<Vec<_>>();
    (any::<bool>(), members).prop_map(|(on_valid, members)| {
        let mut o = if on_valid {
            json!({"client_name": "RP", "redirect_uris": ["https://rp.example/cb"]})
        } else {
            json!({})
        };
        for (k, v) in members {
            if let Some(v) = v {
                o[k] = v;
            }
        }
        o
    })
}

/// RFC 6749 3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

fn refused_as_metadata(e: &AppError) -> bool {
    matches!(
        e,
        AppError::OAuth(OAuthError::InvalidClientMetadata(_) | OAuthError::InvalidRedirectUri(_))
    )
}

fn check(result: Result<(Client, Option<String>), AppError>) -> Result<(), TestCaseError> {
    match result {
        Err(e) => prop_assert!(refused_as_metadata(&e), "{e:?}"),
        Ok((c, secret)) => {
            prop_assert!(!c.name.is_empty() && c.name.len() <= 200);
            for u in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                prop_assert!(validate_redirect_uri(u).is_ok(), "{u:?}");
            }
            for s in &c.scopes {
                prop_assert!(is_scope_token(s), "scope {s:?} accepted");
            }
            // Grant types and the auth method are typed: valid by construction.
            let method = c.token_endpoint_auth_method;
            prop_assert_eq!(secret.is_some(), method.uses_secret());
            prop_assert_eq!(c.secret_hash.is_some(), method.uses_secret());
            prop_assert_eq!(
                c.client_secret_sealed.is_some(),
                method == AuthMethod::ClientSecretJwt
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bytes: refused as metadata, never a panic.
    #[test]
    fn arbitrary_bodies_are_refused_cleanly(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ]
    ) {
        check(register_body(&body))?;
    }

    /// Structured metadata (right members, hostile values): either a
    /// client that keeps every rule or a metadata error.
    #[test]
    fn metadata_is_validated_or_refused(m in metadata()) {
        check(register_body(m.to_string().as_bytes()))?;
    }

    /// A client's `jwks` (any JSON): parsed into usable keys or refused,
    /// never a panic.
    #[test]
    fn client_jwks_never_panic(v in json_value(), keys in prop::collection::vec(json_value(), 0..4)) {
        let _ = crate::clients::parse_jwks(&v.to_string());
        let _ = crate::clients::parse_jwks(&json!({"keys": keys}).to_string());
    }
}

/// JSON nested far deeper than serde's recursion limit is refused, not a
/// stack overflow.
#[test]
fn deeply_nested_metadata_is_refused() {
    let deep = format!("{{\"jwks\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let e = register_body(deep.as_bytes()).unwrap_err();
    assert!(refused_as_metadata(&e), "{e:?}");
}

/// Found by `metadata_is_validated_or_refused`: registration accepted
/// scopes outside the RFC 6749 3.3 grammar (non-ASCII, controls, quotes,
/// backslashes), which every authorization request then refused.
#[test]
fn scopes_outside_the_rfc_grammar_are_refused() {
    for scope in [
        "openid \u{a1}",
        "openid a\"b",
        "a\\b",
        "tab\there",
        "new\nline",
        "caf\u{e9}",
    ] {
        let body = json!({
            "client_name": "RP",
            "redirect_uris": ["https://rp.example/cb"],
            "scope": scope,
        });
        match register_body(body.to_string().as_bytes()) {
            Err(AppError::OAuth(OAuthError::InvalidClientMetadata(description))) => {
                assert!(description.contains("RFC 6749 3.3"), "{description}")
            }
            other => panic!("scope {scope:?}: {other:?}"),
        }
    }
    let odd = "urn:x-y!#$%&'()*+,-./:;<=>?@[]^_`{|}~";
    let ok = json!({
        "client_name": "RP",
        "redirect_uris": ["https://rp.example/cb"],
        "scope": format!("openid api:read {odd}"),
    });
    let policy = RegistrationPolicy {
        scopes: vec!["api:read".to_owned(), odd.to_owned()],
        ..RegistrationPolicy::default()
    };
    assert!(register_body_with(ok.to_string().as_bytes(), &policy).is_ok());
}
