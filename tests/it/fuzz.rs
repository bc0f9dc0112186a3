//! Hostile bodies over real HTTP: the token, introspection, revocation and
//! registration endpoints answer property-generated garbage (forms with
//! repeated, oversized, percent-mangled parameters and forged client
//! assertions; arbitrary JSON) with a 4xx and an RFC error code, never a
//! 5xx or a hang. The parsers' own fuzz targets are in the crates
//! (docs/operations.md); this one checks the edge around them.

use std::time::Duration;

use gatehouse_server::clients::ClientSpec;
use proptest::{prelude::*, test_runner::TestCaseError};
use serde_json::{json, Value};

use crate::support::{TestApp, TestClient};

/// `cases` unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // No shrinking past a minute: each step is an HTTP round trip.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    }
}

/// RFC 6749 5.2, RFC 7591 3.2.2 and RFC 7009 2.2.1 error codes.
const ERRORS: [&str; 12] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_client_metadata",
    "invalid_redirect_uri",
    "unsupported_token_type",
    // /par: the authorization request's own errors (RFC 9126 2.3).
    "unsupported_response_type",
    "invalid_target",
    "invalid_request_object",
];

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "grant_type",
            "client_id",
            "client_secret",
            "client_assertion",
            "client_assertion_type",
            "code",
            "code_verifier",
            "redirect_uri",
            "refresh_token",
            "scope",
            "resource",
            "token",
            "token_type_hint",
            "response_type",
            "request",
            "request_uri",
            "code_challenge",
            "prompt",
            "max_age",
        ])
        .prop_map(str::to_owned),
        "[a-z_%0-9A-F]{0,10}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "openid",
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJIUzI1NiIsImtpZCI6IngifQ.eyJpc3MiOiJ4In0.AAAA",
            "%00",
            "%ZZ",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,60}",
    ];
    prop_oneof![
        4 => prop::collection::vec((name, value), 0..12).prop_map(|pairs| {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,20}".prop_map(Value::from),
    ];
    let any_json = leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let member = prop::sample::select(vec![
        "redirect_uris",
        "grant_types",
        "token_endpoint_auth_method",
        "scope",
        "jwks",
        "jwks_uri",
        "client_name",
        "response_types",
    ]);
    prop_oneof![
        2 => prop::collection::btree_map(member, any_json.clone(), 0..6).prop_map(|m| {
            let mut o = json!({"redirect_uris": ["https://rp.example/cb"]});
            for (k, v) in m {
                o[k] = v;
            }
            o.to_string().into_bytes()
        }),
        1 => any_json.prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// Sends one request and checks the answer is a client error with a JSON
/// body naming an RFC error code (or a 201 for a registration that was in
/// fact valid, a 200 for token endpoints that accept nothing here).
async fn check(
    app: &TestApp,
    path: &str,
    content_type: &str,
    basic: Option<&TestClient>,
    bearer: Option<&str>,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let mut req = app
        .http
        .post(app.url(path))
        .timeout(Duration::from_secs(20))
        .header("content-type", content_type)
        .body(body);
    if let Some(c) = basic {
        req = req.basic_auth(&c.id, c.secret.as_deref());
    }
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req
        .send()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    prop_assert!(status < 500, "{path}: {status} {text}");
    // Revocation answers 200 to a token it does not know (RFC 7009 2.2);
    // registration 201 to metadata that happened to be valid.
    if status != 200 && status != 201 {
        prop_assert!((400..500).contains(&status), "{path}: {status} {text}");
        if status != 429 {
            let v: Value = serde_json::from_str(&text)
                .map_err(|_| TestCaseError::fail(format!("{path}: {status} not JSON: {text}")))?;
            let code = v["error"].as_str().unwrap_or_default();
            prop_assert!(ERRORS.contains(&code), "{path}: {status} {text}");
        }
    }
    Ok(())
}

/// Runs `cases` property cases against `app`, each an HTTP request.
fn run_cases<S: Strategy>(
    cases: u32,
    strategy: S,
    case: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig {
        // Where a failing case is saved (tests/proptest-regressions/).
        source_file: Some(file!()),
        ..config(cases)
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, case) {
        panic!("{e}");
    }
}

async fn token_endpoints_refuse_garbage_cleanly(app: &TestApp) {
    let client = app.web_client().await;
    let handle = tokio::runtime::Handle::current();
    for path in ["/token", "/introspect", "/revoke", "/par"] {
        run_cases(48, (form_body(), any::<bool>()), |(body, basic)| {
            tokio::task::block_in_place(|| {
                handle.block_on(check(
                    app,
                    path,
                    "application/x-www-form-urlencoded",
                    basic.then_some(&client),
                    None,
                    body,
                ))
            })
        });
    }
}

async fn registration_refuses_garbage_cleanly(app: &TestApp) {
    let token = app.initial_access_token(None).await;
    let handle = tokio::runtime::Handle::current();
    run_cases(64, json_body(), |body| {
        tokio::task::block_in_place(|| {
            handle.block_on(check(
                app,
                "/register",
                "application/json",
                None,
                Some(&token),
                body,
            ))
        })
    });
}

/// Found by the registration fuzz target: scopes outside the RFC 6749 3.3
/// grammar were registered (by `POST /register` and `gatehouse clients
/// create`), though every authorization request refuses them.
async fn registration_refuses_scopes_outside_the_rfc_grammar(app: &TestApp) {
    let token = app.initial_access_token(None).await;
    for scope in ["openid caf\u{e9}", "openid a\"b", "a\\b", "tab\there"] {
        let r = app
            .http
            .post(app.url("/register"))
            .bearer_auth(&token)
            .json(&json!({"redirect_uris": ["https://rp.example/cb"], "scope": scope}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{scope:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_client_metadata", "{scope:?}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("RFC 6749 3.3"),
            "{v}"
        );
    }
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&token)
        .json(&json!({"redirect_uris": ["https://rp.example/cb"], "scope": "openid profile email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The admin path holds the same rule.
    let refused = gatehouse_server::clients::build(
        ClientSpec {
            name: "CLI".into(),
            redirect_uris: vec!["https://rp.example/cb".into()],
            scopes: vec!["caf\u{e9}".into()],
            ..ClientSpec::default()
        },
        &app.state.hasher,
        &app.state.sealer,
        app.state.now(),
        &app.state.settings.outbound,
    );
    assert!(refused.is_err());
}

crate::both_backends!(
    token_endpoints_refuse_garbage_cleanly,
    registration_refuses_garbage_cleanly,
    registration_refuses_scopes_outside_the_rfc_grammar,
);
