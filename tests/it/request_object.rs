//! Signed request objects (RFC 9101) at `/authorize` and `/par`: signed
//! with the client's registered key, only the object's parameters count,
//! and each attack is refused: tampered, unsigned, wrong typ, aud or iss,
//! expired, too long-lived, replayed, nested, another client's.

use gatehouse_server::clients::ClientSpec;
use josekit::{
    jwk::Jwk,
    jws::{JwsHeader, ES256, HS256},
};
use serde_json::{json, Value};

use crate::{
    authorization_tx::refused,
    par::{authorize_url, URN},
    private_key_jwt::{assertion, keypair},
    support::{pkce, query_param, TestApp, TestClient},
};

/// A private_key_jwt client with one ES256 key (kid `k1`); its private key.
async fn keyed_client(app: &TestApp) -> (TestClient, Jwk) {
    let (key, public) = keypair("k1");
    let c = app
        .create_client(ClientSpec {
            name: "jar".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/jar".into()],
            auth_method: Some("private_key_jwt".into()),
            jwks: Some(json!({ "keys": [public] }).to_string()),
            ..ClientSpec::default()
        })
        .await;
    (c, key)
}

/// The claims of a good request object of `c` with `challenge`.
fn claims(app: &TestApp, c: &TestClient, challenge: &str) -> Value {
    let now = app.state.now();
    json!({
        "iss": c.id,
        "aud": app.base,
        "client_id": c.id,
        "iat": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
        "response_type": "code",
        "redirect_uri": c.redirect_uri,
        "scope": "openid email",
        "state": "object-state",
        "max_age": 600,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
}

/// `claims` signed with `key` (ES256), typ `typ` (none when `None`).
fn sign(claims: &Value, key: &Jwk, typ: Option<&str>) -> String {
    let mut header = JwsHeader::new();
    header.set_key_id(key.key_id().unwrap());
    if let Some(t) = typ {
        header.set_token_type(t);
    }
    josekit::jws::serialize_compact(
        claims.to_string().as_bytes(),
        &header,
        &ES256.signer_from_jwk(key).unwrap(),
    )
    .unwrap()
}

fn good(claims: &Value, key: &Jwk) -> String {
    sign(claims, key, Some("oauth-authz-req+jwt"))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// GET /authorize with `client_id`, `request` and raw `extra`.
async fn authorize(app: &TestApp, client_id: &str, jwt: &str, extra: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!(
            "/authorize?client_id={client_id}&request={}{extra}",
            enc(jwt)
        )))
        .send()
        .await
        .unwrap()
}

/// A redirect to the client with `error=invalid_request_object` whose
/// description holds `says`, and the object's state.
async fn sent_back(r: reqwest::Response, c: &TestClient, says: &str) {
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&c.redirect_uri), "{to}");
    assert_eq!(
        query_param(to, "error").as_deref(),
        Some("invalid_request_object"),
        "{to}"
    );
    assert!(
        query_param(to, "error_description").unwrap().contains(says),
        "{to}"
    );
    assert_eq!(query_param(to, "state").as_deref(), Some("object-state"));
}

/// Pushes `jwt` as `c` (private_key_jwt); the status and JSON body.
async fn push_object(app: &TestApp, c: &TestClient, key: &Jwk, jwt: &str) -> (u16, Value) {
    let auth = assertion(
        app,
        &c.id,
        key,
        &app.base,
        60,
        &uuid::Uuid::new_v4().to_string(),
    );
    let r = app
        .http
        .post(app.url("/par"))
        .form(&[
            ("client_id", c.id.as_str()),
            ("request", jwt),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &auth),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A valid object at /authorize leads to a code; the parameters outside it
/// (even an unregistered redirect_uri, another state) are ignored.
async fn request_object_at_authorize(app: &TestApp) {
    let (c, key) = keyed_client(app).await;
    app.create_user("dave", "pw-dave-123456").await;
    let (verifier, challenge) = pkce();
    let jwt = good(&claims(app, &c, &challenge), &key);
    let url = app.url(&format!(
        "/authorize?client_id={}&request={}&state=outer&redirect_uri=https%3A%2F%2Fevil.example&scope=nope%22",
        c.id,
        enc(&jwt)
    ));
    let back = app
        .authorize_in_browser(&url, "dave", "pw-dave-123456")
        .await;
    assert!(back.starts_with(&c.redirect_uri), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("object-state"));
    let code = query_param(&back, "code").unwrap();
    let auth = assertion(app, &c.id, &key, &app.base, 60, "code-jti");
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", auth.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Typ JWT and no typ are accepted too.
    for typ in [Some("JWT"), None] {
        let jwt = sign(&claims(app, &c, &challenge), &key, typ);
        let r = authorize(app, &c.id, &jwt, "").await;
        assert_eq!(r.status(), 303);
        assert!(r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?tx="));
    }
}

/// A valid object pushed to /par, then redeemed at /authorize.
async fn request_object_at_par(app: &TestApp) {
    let (c, key) = keyed_client(app).await;
    app.create_user("dave", "pw-dave-123456").await;
    let (_, challenge) = pkce();
    let (status, body) =
        push_object(app, &c, &key, &good(&claims(app, &c, &challenge), &key)).await;
    assert_eq!(status, 201, "{body}");
    let uri = body["request_uri"].as_str().unwrap();
    assert!(uri.starts_with(URN));
    let back = app
        .authorize_in_browser(
            &authorize_url(app, &c.id, uri, ""),
            "dave",
            "pw-dave-123456",
        )
        .await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("object-state"));
    assert!(query_param(&back, "code").is_some(), "{back}");
}

/// Objects whose origin cannot be proven: a page at /authorize (no
/// redirect URI can be trusted), invalid_request_object at /par.
async fn unverifiable_objects_refused(app: &TestApp) {
    let (c, key) = keyed_client(app).await;
    let (_, challenge) = pkce();
    let cl = claims(app, &c, &challenge);
    let jwt = good(&cl, &key);
    // Tampered: another state in the payload, the signature kept.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut forged = cl.clone();
    forged["redirect_uri"] = "https://evil.example/cb".into();
    parts[1] = base64_url(forged.to_string().as_bytes());
    let tampered = parts.join(".");
    // Unsigned (alg none).
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"oauth-authz-req+jwt"}"#),
        base64_url(cl.to_string().as_bytes())
    );
    // Another key under the registered kid.
    let (stranger, _) = keypair("k1");
    // MACed with a secret (HS256): an asymmetric alg is required.
    let mut h = JwsHeader::new();
    h.set_key_id("k1");
    let hs = josekit::jws::serialize_compact(
        cl.to_string().as_bytes(),
        &h,
        &HS256.signer_from_bytes([7u8; 32]).unwrap(),
    )
    .unwrap();
    let cases = [
        (tampered, "signature is not valid"),
        (none, "alg none"),
        (good(&cl, &stranger), "signature is not valid"),
        (hs, "alg must be RS256, PS256, ES256 or EdDSA"),
        (
            sign(&cl, &key, Some("at+jwt")),
            "typ must be oauth-authz-req+jwt or JWT",
        ),
        ("not.a.jwt".to_owned(), "not a compact JWS"),
        (
            format!("{}.a.b.c.d", "x"),
            "encrypted request objects are not supported",
        ),
    ];
    for (jwt, says) in &cases {
        refused(authorize(app, &c.id, jwt, "").await, says).await;
        let (status, body) = push_object(app, &c, &key, jwt).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request_object")),
            "{body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    // Named by another client (whose keys do not verify it), or by none.
    let other = app.web_client().await;
    refused(
        authorize(app, &other.id, &jwt, "").await,
        "no registered keys",
    )
    .await;
    let r = app
        .http
        .get(app.url(&format!("/authorize?request={}", enc(&jwt))))
        .send()
        .await
        .unwrap();
    refused(r, "client_id is missing").await;
}

/// Verified objects with bad claims: `invalid_request_object` at the
/// object's redirect URI (and as JSON at /par).
async fn bad_claims_refused(app: &TestApp) {
    let (c, key) = keyed_client(app).await;
    let (_, challenge) = pkce();
    let now = app.state.now();
    let with = |name: &str, value: Value| {
        let mut cl = claims(app, &c, &challenge);
        if value.is_null() {
            cl.as_object_mut().unwrap().remove(name);
        } else {
            cl[name] = value;
        }
        good(&cl, &key)
    };
    let cases = [
        (
            with("aud", "https://other.example".into()),
            "aud must be the issuer",
        ),
        (with("aud", Value::Null), "aud must be the issuer"),
        (
            with("iss", "someone-else".into()),
            "iss must be the client_id",
        ),
        (
            with("client_id", "someone-else".into()),
            "client_id must be present and match",
        ),
        (
            with("client_id", Value::Null),
            "client_id must be present and match",
        ),
        (with("exp", (now - 60).into()), "has expired"),
        (with("exp", Value::Null), "has no numeric exp"),
        (with("exp", (now + 3 * 3600).into()), "more than 60 minutes"),
        (with("nbf", (now + 600).into()), "not valid yet"),
        // Dated ahead, and times chosen to overflow: refused, no panic.
        (with("iat", (now + 86_400).into()), "iat is in the future"),
        (with("exp", i64::MAX.into()), "more than 60 minutes ahead"),
        (with("nbf", i64::MIN.into()), "more than 60 minutes after"),
        (with("iat", i64::MIN.into()), "more than 60 minutes after"),
        (with("jti", Value::Null), "needs a jti"),
        (
            with("request", "eyJ.x.y".into()),
            "must not contain request or request_uri",
        ),
        (
            with("request_uri", format!("{URN}x").into()),
            "must not contain request or request_uri",
        ),
    ];
    for (jwt, says) in &cases {
        sent_back(authorize(app, &c.id, jwt, "").await, &c, says).await;
        let (status, body) = push_object(app, &c, &key, jwt).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request_object")),
            "{body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(says),
            "{body}"
        );
    }
    // An aud array holding the issuer is fine.
    let jwt = with("aud", json!(["https://other.example", app.base]));
    let r = authorize(app, &c.id, &jwt, "").await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
}

/// A jti is used once, at /authorize or /par alike.
async fn replayed_object_refused(app: &TestApp) {
    let (c, key) = keyed_client(app).await;
    let (_, challenge) = pkce();
    let jwt = good(&claims(app, &c, &challenge), &key);
    let r = authorize(app, &c.id, &jwt, "").await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?tx="));
    sent_back(authorize(app, &c.id, &jwt, "").await, &c, "already used").await;
    let (status, body) = push_object(app, &c, &key, &jwt).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request_object")),
        "{body}"
    );
    // Pushed first, then replayed at /authorize.
    let jwt = good(&claims(app, &c, &challenge), &key);
    assert_eq!(push_object(app, &c, &key, &jwt).await.0, 201);
    sent_back(authorize(app, &c.id, &jwt, "").await, &c, "already used").await;
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

crate::both_backends!(
    request_object_at_authorize,
    request_object_at_par,
    unverifiable_objects_refused,
    bad_claims_refused,
    replayed_object_refused,
);
