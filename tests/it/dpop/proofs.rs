//! Proofs refused: every broken rule by name, replay on any instance
//! (also past a clock gap), nothing written for a stranger's proof, and
//! server nonces.

use super::*;

/// Every broken rule is `invalid_dpop_proof` naming it; a proof is
/// accepted once, also across instances.
async fn bad_proofs_are_refused_by_name(app: &TestApp) {
    let (_, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let url = app.url("/token");
    let now = app.clock.now();
    let claims = |htm: &str, htu: &str, iat: i64| json!({"htm": htm, "htu": htu, "iat": iat, "jti": uuid::Uuid::new_v4().to_string()});
    let cases = [
        (key.sign("dpop+jwt", claims("GET", &url, now)), "htm"),
        (
            key.sign(
                "dpop+jwt",
                claims("POST", "https://elsewhere.example/token", now),
            ),
            "htu",
        ),
        (key.sign("dpop+jwt", claims("POST", &url, now - 120)), "iat"),
        (key.sign("dpop+jwt", claims("POST", &url, now + 120)), "iat"),
        (key.sign("JWT", claims("POST", &url, now)), "typ"),
        ("not-a-jws".to_owned(), "compact JWS"),
    ];
    for (proof, named) in cases {
        let a = json_of(token_with(app, &c, &CC, &[&proof]).await).await;
        refused(&a, "invalid_dpop_proof", named);
    }
    // Unsigned (alg none), and a private key in the header.
    let body = URL_SAFE_NO_PAD.encode(claims("POST", &url, now).to_string());
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": serde_json::from_str::<Value>(&key.public.to_string()).unwrap()}).to_string())
    );
    refused(
        &json_of(token_with(app, &c, &CC, &[&none]).await).await,
        "invalid_dpop_proof",
        "alg",
    );
    let mut header = JwsHeader::new();
    header.set_token_type("dpop+jwt");
    header.set_jwk(key.private.clone());
    let Value::Object(m) = claims("POST", &url, now) else {
        unreachable!()
    };
    let leaky = jwt::encode_with_signer(
        &JwtPayload::from_map(m).unwrap(),
        &header,
        &ES256.signer_from_jwk(&key.private).unwrap(),
    )
    .unwrap();
    refused(
        &json_of(token_with(app, &c, &CC, &[&leaky]).await).await,
        "invalid_dpop_proof",
        "jwk",
    );

    // Two DPoP headers.
    let (p1, p2) = (key.proof(app, "POST", &url), key.proof(app, "POST", &url));
    refused(
        &json_of(token_with(app, &c, &CC, &[&p1, &p2]).await).await,
        "invalid_dpop_proof",
        "one DPoP header",
    );

    // Replay: the same proof twice, here and at another instance.
    let proof = key.proof(app, "POST", &url);
    assert_eq!(token_with(app, &c, &CC, &[&proof]).await.status(), 200);
    refused(
        &json_of(token_with(app, &c, &CC, &[&proof]).await).await,
        "invalid_dpop_proof",
        "used before",
    );
    // A second instance behind the same issuer shares the replay store.
    let b = app.second_instance().await;
    let other = key.proof(app, "POST", &url);
    assert_eq!(token_with(app, &c, &CC, &[&other]).await.status(), 200);
    let a = json_of(token_with(&b, &c, &CC, &[&other]).await).await;
    refused(&a, "invalid_dpop_proof", "used before");
    let fresh = key.proof(app, "POST", &url);
    assert_eq!(token_with(&b, &c, &CC, &[&fresh]).await.status(), 200);
    b.stop().await;
}

/// A proof is recorded only once the request behind it holds: a
/// stranger's proof with a made-up token or code writes nothing.
async fn a_strangers_proof_writes_nothing(app: &TestApp) {
    let rows = || async { app.state.store.revocation_list_size().await.unwrap() };
    let before = rows().await;
    let key = DpopKey::new();
    for token in ["x", "made.up.token.value.here"] {
        let r = app
            .http
            .get(app.url("/userinfo"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", key.userinfo_proof(app, "GET", token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let c = app.web_client().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "no-such-code"),
        ("redirect_uri", c.redirect_uri.as_str()),
    ];
    let a = json_of(token_with(app, &c, &form, &[&key.token_proof(app)]).await).await;
    refused(&a, "invalid_grant", "unknown");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "no-such-token"),
    ];
    let a = json_of(token_with(app, &c, &refresh, &[&key.token_proof(app)]).await).await;
    refused(&a, "invalid_grant", "unknown");
    assert_eq!(rows().await, before, "a refused request recorded its proof");
}

/// A proof's jti outlives its window twice over: an instance whose clock
/// is behind the one that pruned still refuses the replay.
async fn a_proof_is_remembered_past_a_clock_gap(app: &TestApp) {
    let (_, c) = api_and_service(app).await;
    let key = DpopKey::new();
    let proof = key.token_proof(app);
    assert_eq!(token_with(app, &c, &CC, &[&proof]).await.status(), 200);
    // The pruning instance is 70 s on (past iat + 60 + 1)...
    app.clock.advance(70);
    app.state
        .store
        .prune_revoked(app.state.now())
        .await
        .unwrap();
    // ...the answering one (another instance: its memory never saw the
    // proof) 65 s behind it, where the proof is still fresh.
    app.clock.advance(-65);
    let b = app.second_instance().await;
    let a = json_of(token_with(&b, &c, &CC, &[&proof]).await).await;
    refused(&a, "invalid_dpop_proof", "used before");
    b.stop().await;
}

crate::both_backends!(
    bad_proofs_are_refused_by_name,
    a_strangers_proof_writes_nothing,
    a_proof_is_remembered_past_a_clock_gap,
);

/// With nonces on: a proof without one gets `use_dpop_nonce` and the
/// nonce; every instance accepts every other's; an old one is refused.
async fn nonces_round_trip(kind: DbKind) {
    let Some(app) = spawn_app_with(
        kind,
        RawConfig {
            dpop_nonce: Some(true),
            ..RawConfig::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, c) = api_and_service(&app).await;
    let key = DpopKey::new();
    let url = app.url("/token");
    let r = token_with(&app, &c, &CC, &[&key.proof(&app, "POST", &url)]).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    refused(&json_of(r).await, "use_dpop_nonce", "nonce");
    let with_nonce = |n: &str| {
        let mut extra = Map::new();
        extra.insert("nonce".into(), n.into());
        key.proof_with(&app, "POST", &url, extra)
    };
    let r = token_with(&app, &c, &CC, &[&with_nonce(&nonce)]).await;
    assert!(r.headers().contains_key("dpop-nonce"));
    let (status, t) = json_of(r).await;
    assert_eq!(status, 200, "{t}");
    // Another instance (same key-encryption key) hands out and accepts
    // the same nonce.
    let b = app.second_instance().await;
    assert_eq!(b.state.dpop_nonces.current(b.state.now()), nonce);
    assert!(b.state.dpop_nonces.accepts(&nonce, b.state.now()));
    b.stop().await;
    // Eleven minutes on, the nonce is stale.
    app.clock.advance(660);
    let r = token_with(&app, &c, &CC, &[&with_nonce(&nonce)]).await;
    let fresh = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_ne!(fresh, nonce);
    refused(&json_of(r).await, "use_dpop_nonce", "not current");
    // Userinfo answers use_dpop_nonce as a DPoP challenge with the nonce.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", "DPoP abc")
        .header("DPoP", key.userinfo_proof(&app, "GET", "abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("dpop-nonce"));
    let ch = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(ch.starts_with("DPoP error=\"use_dpop_nonce\""), "{ch}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_round_trip_sqlite() {
    nonces_round_trip(DbKind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_round_trip_postgres() {
    nonces_round_trip(DbKind::Postgres).await;
}
