//! Bound tokens: what the token endpoint (and /par) binds, and to what:
//! access tokens (`token_type` DPoP, `cnf.jkt` inside the JWE and at
//! introspection), public clients' refresh tokens, codes (`dpop_jkt`, a
//! proof at /par), clients that require it, and the verifier holding it.

use super::*;

/// client_credentials with a proof: a DPoP token whose `cnf.jkt` (inside
/// the JWE, and at introspection) is the key's thumbprint; without one, a
/// Bearer token without `cnf`.
async fn client_credentials_tokens_are_bound_to_the_proof_key(app: &TestApp) {
    let (kp, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let r = token_with(app, &c, &CC, &[&key.token_proof(app)]).await;
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(api_claims(&kp, at)["cnf"]["jkt"], key.jkt);
    let i = introspect(app, &c, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.jkt);

    let (status, t) = json_of(token_with(app, &c, &CC, &[]).await).await;
    assert_eq!(status, 200);
    assert_eq!(t["token_type"], "Bearer");
    let at = t["access_token"].as_str().unwrap();
    assert!(api_claims(&kp, at).get("cnf").is_none());
    let i = introspect(app, &c, at).await;
    assert_eq!(i["token_type"], "Bearer");
    assert!(i.get("cnf").is_none());
}

/// A public client: the access token and the refresh token are bound; the
/// refresh token works only with a proof of the same key, and failed
/// attempts neither spend it nor set off reuse detection.
async fn a_public_clients_refresh_token_is_bound_to_its_key(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "spa".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let key = DpopKey::new();
    let (code, verifier) = app
        .code(&c, "openid offline_access", "&prompt=consent")
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
        ("client_id", c.id.as_str()),
    ];
    let proof = key.token_proof(app);
    let (status, t) = json_of(token_with(app, &c, &form, &[&proof]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", c.id.as_str()),
    ];
    let a = json_of(token_with(app, &c, &refresh, &[]).await).await;
    refused(&a, "invalid_grant", "bound to a DPoP key");
    let stranger = DpopKey::new();
    let a = json_of(token_with(app, &c, &refresh, &[&stranger.token_proof(app)]).await).await;
    refused(&a, "invalid_grant", "bound to another DPoP key");
    let (status, t) = json_of(token_with(app, &c, &refresh, &[&key.token_proof(app)]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    // The successor is bound too.
    let next = t["refresh_token"].as_str().unwrap();
    let refresh2 = [
        ("grant_type", "refresh_token"),
        ("refresh_token", next),
        ("client_id", c.id.as_str()),
    ];
    refused(
        &json_of(token_with(app, &c, &refresh2, &[]).await).await,
        "invalid_grant",
        "bound to a DPoP key",
    );
}

/// A confidential client's refresh token is not bound (RFC 9449 5): a
/// refresh without a proof gets a Bearer token.
async fn a_confidential_clients_refresh_token_is_not_bound(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let t = bound_tokens(app, &c, "openid offline_access", "&prompt=consent", &key).await;
    assert_eq!(t["token_type"], "DPoP");
    let r = app.refresh(&c, t["refresh_token"].as_str().unwrap()).await;
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
}

/// `dpop_jkt` at /authorize binds the code: another key's proof is
/// `invalid_grant`, none is `invalid_dpop_proof`, and neither spends it.
async fn dpop_jkt_binds_the_code(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let (code, verifier) = app
        .code(&c, "openid", &format!("&dpop_jkt={}", key.jkt))
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    refused(
        &json_of(token_with(app, &c, &form, &[]).await).await,
        "invalid_dpop_proof",
        "dpop_jkt",
    );
    let other = DpopKey::new().proof(app, "POST", &app.url("/token"));
    refused(
        &json_of(token_with(app, &c, &form, &[&other]).await).await,
        "invalid_grant",
        "dpop_jkt",
    );
    let (status, t) = json_of(token_with(app, &c, &form, &[&key.token_proof(app)]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");

    // A malformed dpop_jkt goes back to the client as invalid_request.
    let (_, challenge) = crate::support::pkce();
    let url = app.authorize_url(&c, "openid", &challenge, "&dpop_jkt=short");
    let r = app.browser.get(url).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.contains("error=invalid_request") && loc.contains("dpop_jkt"),
        "{loc}"
    );
}

/// A proof at /par binds the code of the pushed request to its key (RFC
/// 9449 10.1); with `dpop_jkt` too, both must name the same key.
async fn a_proof_at_par_binds_the_code(app: &TestApp) {
    let c = app.web_client().await;
    let key = DpopKey::new();
    let (verifier, challenge) = crate::support::pkce();
    let form = |extra: Option<(&'static str, String)>| {
        let mut f = vec![
            ("response_type", "code".to_owned()),
            ("client_id", c.id.clone()),
            ("redirect_uri", c.redirect_uri.clone()),
            ("scope", "openid".to_owned()),
            ("state", "st".to_owned()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        f.extend(extra);
        f
    };
    let push = |f: Vec<(&'static str, String)>, proof: String| {
        app.http
            .post(app.url("/par"))
            .basic_auth(&c.id, c.secret.as_deref())
            .header("DPoP", proof)
            .form(&f)
            .send()
    };
    // dpop_jkt naming another key than the proof's.
    let other = DpopKey::new();
    let r = push(
        form(Some(("dpop_jkt", other.jkt.clone()))),
        key.proof(app, "POST", &app.url("/par")),
    )
    .await
    .unwrap();
    refused(&json_of(r).await, "invalid_dpop_proof", "dpop_jkt");
    // A proof for the token endpoint is not one for /par.
    let r = push(form(None), key.token_proof(app)).await.unwrap();
    refused(&json_of(r).await, "invalid_dpop_proof", "htu");

    let r = push(form(None), key.proof(app, "POST", &app.url("/par")))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let pushed: Value = r.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    if app
        .state
        .store
        .user_by_username("dave")
        .await
        .unwrap()
        .is_none()
    {
        app.create_user("dave", "pw-dave-123456").await;
    }
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    let back = app
        .authorize_in_browser(
            &format!(
                "{}?client_id={}&request_uri={}",
                app.url("/authorize"),
                c.id,
                enc(request_uri)
            ),
            "dave",
            "pw-dave-123456",
        )
        .await;
    let code = crate::support::query_param(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    refused(
        &json_of(token_with(app, &c, &redeem, &[]).await).await,
        "invalid_dpop_proof",
        "dpop_jkt",
    );
    let (status, t) = json_of(token_with(app, &c, &redeem, &[&key.token_proof(app)]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
}

/// A client registered with `dpop_bound_access_tokens` gets no token
/// without a proof (RFC 9449 5.2).
async fn a_dpop_bound_client_must_send_a_proof(app: &TestApp) {
    let _ = ecdh_api(app, "https://api.example").await;
    let c = app
        .create_client(ClientSpec {
            name: "bound".into(),
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["read".into()],
            dpop_bound_access_tokens: true,
            ..ClientSpec::default()
        })
        .await;
    let a = json_of(token_with(app, &c, &CC, &[]).await).await;
    refused(&a, "invalid_dpop_proof", "dpop_bound_access_tokens");
    let key = DpopKey::new();
    let (status, t) = json_of(token_with(app, &c, &CC, &[&key.token_proof(app)]).await).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
}

/// Dynamic registration takes `dpop_bound_access_tokens` (RFC 9449 5.2)
/// and answers with it.
async fn registration_takes_dpop_bound_access_tokens(app: &TestApp) {
    let iat = app.initial_access_token(None).await;
    let r = app
        .http
        .post(app.url("/register"))
        .bearer_auth(&iat)
        .json(&json!({
            "client_name": "Bound App",
            "redirect_uris": ["https://bound.example/cb"],
            "dpop_bound_access_tokens": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["dpop_bound_access_tokens"], true);
    let stored = app
        .state
        .store
        .client(c["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.dpop_bound_access_tokens);
    // An update that leaves it out (RFC 7592 2.2 replaces the metadata)
    // does not loosen it: a client may only make itself stricter.
    let r = app
        .http
        .put(c["registration_client_uri"].as_str().unwrap())
        .bearer_auth(c["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": c["client_id"],
            "client_name": "Bound App",
            "redirect_uris": ["https://bound.example/cb"],
            "require_pushed_authorization_requests": true,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["dpop_bound_access_tokens"], true, "{u}");
    assert_eq!(u["require_pushed_authorization_requests"], true, "{u}");
    let r = app
        .http
        .put(c["registration_client_uri"].as_str().unwrap())
        .bearer_auth(c["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": c["client_id"],
            "client_name": "Bound App",
            "redirect_uris": ["https://bound.example/cb"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["require_pushed_authorization_requests"], true, "{u}");
    assert_eq!(u["dpop_bound_access_tokens"], true, "{u}");
}

/// An API using `gatehouse-verifier` takes Gatehouse's bound token only
/// with a proof of its key (and never as a bearer token).
async fn the_verifier_holds_the_binding(app: &TestApp) {
    use gatehouse_verifier::{Verifier, VerifierConfig, VerifierError};
    let (kp, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let (_, t) = json_of(token_with(app, &c, &CC, &[&key.token_proof(app)]).await).await;
    let at = t["access_token"].as_str().unwrap();
    let mut private: Value = serde_json::from_str(&kp.to_jwk_private_key().to_string()).unwrap();
    private["kid"] = "api".into();
    private["alg"] = "ECDH-ES+A256KW".into();
    let verifier = Verifier::new(
        VerifierConfig::new(app.base.clone(), "https://api.example", private.to_string())
            .dpop_base_url("https://api.example"),
    )
    .unwrap();
    let proof_for = |k: &DpopKey| {
        let mut extra = Map::new();
        extra.insert(
            "ath".into(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(at.as_bytes())).into(),
        );
        k.proof_with(app, "GET", "https://api.example/orders", extra)
    };
    let claims = verifier
        .verify_dpop(at, &proof_for(&key), "GET", "/orders")
        .await
        .unwrap();
    assert_eq!(claims.cnf.unwrap().jkt, key.jkt);
    assert!(matches!(
        verifier.verify(at).await,
        Err(VerifierError::DpopBound)
    ));
    assert!(matches!(
        verifier
            .verify_dpop(at, &proof_for(&DpopKey::new()), "GET", "/orders")
            .await,
        Err(VerifierError::DpopKeyMismatch)
    ));
}

/// Discovery lists the proof algorithms.
async fn discovery_lists_the_proof_algorithms(app: &TestApp) {
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "RS256", "PS256"])
    );
}

crate::both_backends!(
    client_credentials_tokens_are_bound_to_the_proof_key,
    a_public_clients_refresh_token_is_bound_to_its_key,
    a_confidential_clients_refresh_token_is_not_bound,
    dpop_jkt_binds_the_code,
    a_proof_at_par_binds_the_code,
    a_dpop_bound_client_must_send_a_proof,
    registration_takes_dpop_bound_access_tokens,
    the_verifier_holds_the_binding,
    discovery_lists_the_proof_algorithms,
);
