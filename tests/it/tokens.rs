//! Token endpoint grants, refresh rotation, userinfo, introspection and
//! revocation, through real HTTP.

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::support::{introspect, userinfo_status, TestApp};

async fn refresh_rotation_grace_and_reuse(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let rt1 = t["refresh_token"]
        .as_str()
        .expect("refresh token for offline_access")
        .to_owned();

    let refresh = |rt: String| {
        let c = c.clone();
        async move {
            let r = app
                .token(
                    &c,
                    &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                )
                .await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (s, t2) = refresh(rt1.clone()).await;
    assert_eq!(s, 200, "{t2}");
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "rotated on use");
    // A retry within the grace window gets the same successor.
    let (s, again) = refresh(rt1.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(again["refresh_token"].as_str().unwrap(), rt2);
    // Use the successor; now the first token is plain reuse: the family dies.
    let (s, t3) = refresh(rt2.clone()).await;
    assert_eq!(s, 200);
    let rt3 = t3["refresh_token"].as_str().unwrap().to_owned();
    let (s, err) = refresh(rt1.clone()).await;
    assert_eq!(s, 400);
    assert_eq!(err["error"], "invalid_grant");
    let (s, err) = refresh(rt3).await;
    assert_eq!(s, 400, "reuse revoked the whole family");
    assert_eq!(err["error"], "invalid_grant");
}

async fn refresh_scope_narrowing_and_widening(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid email offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("scope", "openid profile"),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["scope"], "openid");
    // Another client cannot use it.
    let other = app.web_client().await;
    let r = app
        .token(
            &other,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(r.status(), 400);
}

async fn userinfo_introspection_and_revocation(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid email", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, at).await, 200);
    let i = introspect(app, &c, at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], c.id.as_str());
    assert_eq!(i["scope"], "email openid");
    // Introspection needs client authentication.
    let r = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Revoke: userinfo and introspection see it on the next request.
    crate::support::revoke(app, &c, at).await;
    assert_eq!(userinfo_status(app, at).await, 401);
    assert_eq!(
        introspect(app, &c, at).await,
        serde_json::json!({ "active": false })
    );
    // Unknown tokens: 200 at revocation, inactive at introspection.
    crate::support::revoke(app, &c, "nonsense").await;
    assert_eq!(
        introspect(app, &c, "nonsense").await,
        serde_json::json!({ "active": false })
    );
}

async fn userinfo_rejects_bad_tokens(app: &TestApp) {
    let r = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let r = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth("a.b.c.d.e")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    // Expired: move the clock past the access token's lifetime.
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(app, at).await, 200);
    app.clock.advance(901);
    assert_eq!(userinfo_status(app, at).await, 401);
}

/// RFC 6750 3.1: `invalid_request` is 400 with a Bearer challenge naming
/// it; another scheme than Bearer is answered like no credentials (401, a
/// challenge without error code); a valid Bearer header with a body that
/// is not a form is enough (OIDC Core 5.3.1).
async fn userinfo_invalid_request_is_400_with_bearer_challenge(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let post = || app.http.post(app.url("/userinfo"));
    let form = "application/x-www-form-urlencoded";
    let invalid_request = |r: &reqwest::Response, what: &str| {
        assert_eq!(r.status(), 400, "{what}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(
                "Bearer realm=\"gatehouse\", error=\"invalid_request\", error_description=\""
            ),
            "{what}: {challenge}"
        );
        assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
    };
    // The token in the header and in the body.
    let r = post()
        .bearer_auth(at)
        .header("content-type", form)
        .body(format!("access_token={at}"))
        .send()
        .await
        .unwrap();
    invalid_request(&r, "header and body");
    // access_token repeated in the body.
    let r = post()
        .header("content-type", form)
        .body(format!("access_token={at}&access_token={at}"))
        .send()
        .await
        .unwrap();
    invalid_request(&r, "repeated access_token");
    // A body token that is not a form.
    let r = post()
        .header("content-type", "application/json")
        .body(format!("{{\"access_token\":\"{at}\"}}"))
        .send()
        .await
        .unwrap();
    invalid_request(&r, "JSON body without header");
    // "Bearer" without a token.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    invalid_request(&r, "empty Bearer");
    // The Basic scheme: an unsupported method, answered with no error code.
    let r = app
        .http
        .get(app.url("/userinfo"))
        .basic_auth("someone", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"gatehouse\""
    );
    // A valid Bearer header with a body that is not a form, or a form
    // without a token: accepted.
    for (content_type, body) in [("application/json", "{}"), (form, "x=1")] {
        let r = post()
            .bearer_auth(at)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{content_type}");
    }
    // The token in the body alone: accepted (RFC 6750 2.2).
    let r = post()
        .header("content-type", form)
        .body(format!("access_token={at}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn code_replay_revokes_issued_tokens(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(app, at).await,
        401,
        "the access token from the first redemption is revoked"
    );
    let r = app
        .token(
            &c,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        )
        .await;
    assert_eq!(
        r.status(),
        400,
        "the refresh token from the first redemption is revoked"
    );
}

async fn concurrent_code_redemptions(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let http = app.http.clone();
        let url = app.url("/token");
        let (c, code, verifier) = (c.clone(), code.clone(), verifier.clone());
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .basic_auth(&c.id, c.secret.as_deref())
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &c.redirect_uri),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one redemption succeeds");
}

async fn client_credentials_needs_a_confidential_client(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "svc".into(),
            grant_types: vec!["client_credentials".into()],
            ..ClientSpec::default()
        })
        .await;
    let r = app.token(&c, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let i = introspect(app, &c, t["access_token"].as_str().unwrap()).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], c.id.as_str());
    // A grant the client was not registered for.
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("redirect_uri", "http://x"),
            ],
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "password"),
                ("username", "x"),
                ("password", "y"),
            ],
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

async fn concurrent_refreshes_give_one_successor(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid offline_access", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, url, c, rt) = (app.http.clone(), app.url("/token"), c.clone(), rt.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .basic_auth(&c.id, c.secret.as_deref())
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut successors = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(
            status, 200,
            "a retry inside the grace window is not an attack: {body}"
        );
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "exactly one successor");
}

async fn introspection_as_jwt(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("accept", "application/token-introspection+jwt")
        .form(&[("token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/token-introspection+jwt"
    );
    let jwt = r.text().await.unwrap();
    let v = app
        .state
        .keys
        .verify(&jwt, &gatehouse_keys::SIGNING_ALGS)
        .unwrap();
    assert_eq!(v.header["typ"], "token-introspection+jwt");
    assert_eq!(v.claims["aud"], c.id.as_str());
    assert_eq!(v.claims["token_introspection"]["active"], true);
}

/// Access tokens for Gatehouse's own userinfo endpoint are `dir`-encrypted
/// (AES-256-GCM under a KEK-derived day key): tampering fails, and revoking
/// the key that signed the nested JWS still ends the token.
async fn own_tokens_are_direct_encrypted_and_die_with_their_key(app: &TestApp) {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let at = t["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[1], "", "no encrypted key with alg dir");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "dir");
    assert_eq!(header["enc"], "A256GCM");
    assert!(header["kid"].as_str().unwrap().starts_with("gh-dir-"));
    assert_eq!(userinfo_status(app, at).await, 200);

    let mut tampered: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
    let mut ct = URL_SAFE_NO_PAD.decode(&tampered[3]).unwrap();
    ct[10] ^= 0x20;
    tampered[3] = URL_SAFE_NO_PAD.encode(ct);
    assert_eq!(userinfo_status(app, &tampered.join(".")).await, 401);

    let (_, jws) = app.state.keys.decrypt_own_token(at).unwrap();
    let jws_header = std::str::from_utf8(&jws)
        .unwrap()
        .split('.')
        .next()
        .unwrap();
    let jws_header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jws_header).unwrap()).unwrap();
    app.state
        .keys
        .revoke(jws_header["kid"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        userinfo_status(app, at).await,
        401,
        "its signing key was revoked"
    );
    assert_eq!(introspect(app, &c, at).await["active"], false);
}

crate::both_backends!(
    own_tokens_are_direct_encrypted_and_die_with_their_key,
    concurrent_refreshes_give_one_successor,
    introspection_as_jwt,
    refresh_rotation_grace_and_reuse,
    refresh_scope_narrowing_and_widening,
    userinfo_introspection_and_revocation,
    userinfo_rejects_bad_tokens,
    userinfo_invalid_request_is_400_with_bearer_challenge,
    code_replay_revokes_issued_tokens,
    concurrent_code_redemptions,
    client_credentials_needs_a_confidential_client
);
