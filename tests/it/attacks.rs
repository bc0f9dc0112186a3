//! Attacks next to the happy path. The rule throughout: a clear, standard
//! error, never a 500, never a redirect to a URI that is not registered.

use gatehouse_server::clients::ClientSpec;
use serde_json::Value;

use crate::support::{pkce, query_param, TestApp};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn redirect_uri_variants_get_a_page_not_a_redirect(app: &TestApp) {
    let c = app
        .create_client(ClientSpec {
            name: "Strict".into(),
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "http://127.0.0.1/loop".into(),
            ],
            ..ClientSpec::default()
        })
        .await;
    for bad in [
        "https://app.example/cb?extra=1",
        "https://app.example/cb/",
        "https://app.example/CB",
        "https://APP.example/cb",
        "https://app.example/cb/../cb",
        "https://app.example/cb/%2e%2e/cb",
        "https://app.example/%63b",
        "https://user@app.example/cb",
        "https://app.example/cb#frag",
        "https://app.example.evil.example/cb",
        "http://localhost.evil.example/loop",
        "http://127.0.0.1.evil.example/loop",
        "https://evil.example/cb",
    ] {
        let url = format!(
            "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid",
            app.url("/authorize"),
            c.id,
            enc(bad)
        );
        let r = app.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(
            r.headers().get("location").is_none(),
            "{bad} must not redirect"
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("redirect_uri is not registered"),
            "{bad}: {body}"
        );
    }
    // Only the port of a loopback IP redirect may vary (RFC 8252 7.3).
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid&code_challenge={}&code_challenge_method=S256",
        app.url("/authorize"),
        c.id,
        enc("http://127.0.0.1:61234/loop"),
        pkce().1
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?"));
    // Unknown client: a page.
    let url = format!(
        "{}?client_id=nope&redirect_uri={}&response_type=code",
        app.url("/authorize"),
        enc("https://app.example/cb")
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

async fn authorize_errors_redirect_with_state_and_iss(app: &TestApp) {
    let c = app.web_client().await;
    let public = app
        .create_client(ClientSpec {
            name: "SPA".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/spa".into()],
            auth_method: Some("none".into()),
            ..ClientSpec::default()
        })
        .await;
    let base = |c: &crate::support::TestClient| {
        format!(
            "{}?client_id={}&redirect_uri={}&state=S&nonce=N",
            app.url("/authorize"),
            c.id,
            enc(&c.redirect_uri)
        )
    };
    let cases = [
        (base(&c) + "&scope=openid", "invalid_request"),
        (base(&c) + "&response_type=token&scope=openid", "unsupported_response_type"),
        (base(&c) + "&response_type=code&scope=openid%20admin", "invalid_scope"),
        (base(&c) + "&response_type=code&scope=openid&resource=https%3A%2F%2Fnope.example", "invalid_target"),
        (base(&c) + "&response_type=code&scope=openid&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabcd&code_challenge_method=plain", "invalid_request"),
        (base(&c) + "&response_type=code&scope=openid&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabcd", "invalid_request"),
        (base(&c) + "&response_type=code&scope=openid&scope=email", "invalid_request"),
        (base(&c) + "&response_type=code&scope=openid&prompt=none%20login", "invalid_request"),
        (base(&c) + "&response_type=code&scope=openid&max_age=-1", "invalid_request"),
        // Never fetched (a request object that cannot be verified is a
        // page instead: request_object::unverifiable_objects_refused).
        (base(&c) + "&response_type=code&scope=openid&request_uri=https%3A%2F%2Fapp.example%2Fr", "request_uri_not_supported"),
        (base(&c) + "&response_type=code&scope=openid&id_token_hint=a.b.c", "invalid_request"),
        (base(&public) + "&response_type=code&scope=openid", "invalid_request"),
    ];
    for (url, expected) in cases {
        let r = app.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 303, "{url}");
        let loc = r.headers()["location"].to_str().unwrap();
        assert_eq!(
            query_param(loc, "error").as_deref(),
            Some(expected),
            "{url} -> {loc}"
        );
        assert_eq!(query_param(loc, "state").as_deref(), Some("S"));
        assert_eq!(query_param(loc, "iss").as_deref(), Some(app.base.as_str()));
    }
    // A 4 KB state is echoed intact.
    let big = "s".repeat(4096);
    let url = format!(
        "{}?client_id={}&redirect_uri={}&state={big}&scope=openid",
        app.url("/authorize"),
        c.id,
        enc(&c.redirect_uri)
    );
    let r = app.http.get(&url).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "state").as_deref(), Some(big.as_str()));
}

async fn code_exchange_attacks(app: &TestApp) {
    let c = app.web_client().await;
    let other = app.web_client().await;
    let err = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: Value = r.json().await.unwrap();
        (status, v["error"].as_str().unwrap_or_default().to_owned())
    };
    // Wrong verifier.
    let (code, _) = app.code(&c, "openid", "").await;
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", &pkce().0),
            ],
        )
        .await;
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
    // Missing verifier.
    let (code, _) = app.code(&c, "openid", "").await;
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect_uri),
            ],
        )
        .await;
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
    // A code from another client.
    let (code, verifier) = app.code(&c, "openid", "").await;
    let r = app
        .token(
            &other,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
    // Wrong redirect_uri.
    let (code, verifier) = app.code(&c, "openid", "").await;
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9999/other"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
    // Expired (codes live 60 s).
    let (code, verifier) = app.code(&c, "openid", "").await;
    app.clock.advance(61);
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
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
    // Garbage code.
    let r = app
        .token(
            &c,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x' OR 1=1 --"),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(err(r).await, (400, "invalid_grant".into()));
}

async fn client_authentication_attacks(app: &TestApp) {
    let c = app.web_client().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", "http://127.0.0.1:9999/callback"),
    ];
    // Wrong secret with Basic: 401 with a Basic challenge.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&c.id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Unknown client in the body: 401.
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nope"),
            ("client_secret", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Right secret in the form although the client registered Basic: the
    // same shared secret, so it authenticates (openid-client sends it this
    // way by default); what answers is the grant, not invalid_client.
    let secret = c.secret.clone().unwrap();
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", c.id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_ne!(body["error"], "invalid_client", "{body}");
    // Two methods at once.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&c.id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Garbage Authorization header.
    let r = app
        .http
        .post(app.url("/token"))
        .header("authorization", "Basic %%%")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn malformed_and_oversized_requests(app: &TestApp) {
    let c = app.web_client().await;
    let secret = c.secret.clone().unwrap();
    // Duplicated parameter.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&c.id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&code=a&code=b&redirect_uri=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // JSON instead of a form.
    let r = app
        .http
        .post(app.url("/token"))
        .basic_auth(&c.id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    // Malformed form bytes.
    for body in [
        "%%%%",
        "grant_type",
        "=&=&=",
        "\u{0}\u{1}",
        "grant_type=%FF%FE",
    ] {
        let r = app
            .http
            .post(app.url("/token"))
            .basic_auth(&c.id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 400 || r.status() == 401,
            "{body:?} -> {}",
            r.status()
        );
    }
    // 10 MB body: 413, on every POST endpoint.
    let big = vec![b'a'; 10 * 1024 * 1024];
    for path in [
        "/token",
        "/login",
        "/consent",
        "/introspect",
        "/revoke",
        "/userinfo",
        "/authorize",
        "/logout",
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await;
        match r {
            Ok(r) => {
                assert_eq!(r.status(), 413, "{path}");
                // The credential endpoints' answers are never stored, this one included.
                if ["/token", "/introspect", "/revoke", "/userinfo"].contains(&path) {
                    assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
                }
            }
            // The server may close the connection before reading everything.
            Err(e) => assert!(e.is_request() || e.is_body(), "{path}: {e}"),
        }
    }
    // Just over the limit, with Content-Length: the body-limit layer answers
    // before the route runs, with the token endpoint's cache headers.
    // On a connection of its own: the server closes it after a 413 with
    // the body unread, and a pooled connection would fail the next request.
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    // A form with far too many parameters.
    let many: String = (0..500).map(|i| format!("p{i}=v&")).collect();
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&c.id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(many)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn login_does_not_reveal_which_users_exist(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let page = app.browser.get(app.url("/login")).send().await.unwrap();
    let h = page.headers().clone();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    let csrf = crate::support::hidden(&html, "csrf");
    let mut bodies = Vec::new();
    for (u, p) in [("erin", "wrong"), ("nobody", "wrong"), ("erin", "")] {
        let r = app
            .browser
            .post(app.url("/login"))
            .form(&[("csrf", csrf.as_str()), ("username", u), ("password", p)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let body = r.text().await.unwrap();
        assert!(body.contains("Incorrect username or password."));
        bodies.push(body.replace(u, "USER").replace(&csrf, "CSRF"));
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    // Without the CSRF token: refused.
    let r = app
        .http
        .post(app.url("/login"))
        .form(&[("username", "erin"), ("password", "pw-erin-123456")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Success: 303 and a session cookie; then the session id is renewed on the next login.
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "Erin "),
            ("password", "pw-erin-123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "erin"),
            ("password", "pw-erin-123456"),
        ])
        .send()
        .await
        .unwrap();
    let cookie2 = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(cookie, cookie2, "a new session id at every login");
}

async fn logout_ends_the_session(app: &TestApp) {
    let c = app.web_client().await;
    let (code, verifier) = app.code(&c, "openid", "").await;
    let t = app.redeem(&c, &code, &verifier).await;
    let id_token = t["id_token"].as_str().unwrap();
    // A tampered hint: refused, no redirect.
    let mut tampered = id_token.to_owned();
    tampered.push('x');
    let url = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri={}",
        app.url("/logout"),
        tampered,
        enc("http://127.0.0.1:9999/signed-out")
    );
    let r = app.browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // An unregistered post-logout URI: logged out, but no redirect.
    // A valid hint with a registered URI: logged out and redirected with state.
    let url = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
        app.url("/logout"),
        id_token,
        enc("http://127.0.0.1:9999/signed-out")
    );
    let r = app.browser.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "http://127.0.0.1:9999/signed-out?state=bye"
    );
    // The session is gone: prompt=none now answers login_required.
    let (_, challenge) = pkce();
    let r = app
        .browser
        .get(app.authorize_url(&c, "openid", &challenge, "&prompt=none"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("login_required"));
}

async fn guessing_is_throttled_with_growing_delays(app: &TestApp) {
    app.create_user("frank", "pw-frank-123456").await;
    let html = app
        .browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::support::hidden(&html, "csrf");
    let attempt = |pw: &'static str| {
        let csrf = csrf.clone();
        async move {
            app.browser
                .post(app.url("/login"))
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("username", "frank"),
                    ("password", pw),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for _ in 0..6 {
        assert_eq!(attempt("wrong").await.status(), 401);
    }
    let r = attempt("pw-frank-123456").await;
    assert_eq!(
        r.status(),
        429,
        "even the right password waits out the delay"
    );
    assert_eq!(r.headers()["retry-after"], "1");
    app.clock.advance(2);
    assert_eq!(
        attempt("pw-frank-123456").await.status(),
        303,
        "a delay, not a lockout"
    );

    // Failed client authentication, per client id: wrong secrets are held
    // off, the right one never is.
    let c = app.web_client().await;
    let wrong = || async {
        app.http
            .post(app.url("/token"))
            .basic_auth(&c.id, Some("wrong"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    };
    for _ in 0..6 {
        assert_eq!(wrong().await.status(), 401);
    }
    let r = wrong().await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let r = app.token(&c, &[("grant_type", "client_credentials")]).await;
    assert_ne!(r.status(), 429, "the right secret is not throttled");
    assert_ne!(r.status(), 401);
}

crate::both_backends!(
    guessing_is_throttled_with_growing_delays,
    redirect_uri_variants_get_a_page_not_a_redirect,
    authorize_errors_redirect_with_state_and_iss,
    code_exchange_attacks,
    client_authentication_attacks,
    malformed_and_oversized_requests,
    login_does_not_reveal_which_users_exist,
    logout_ends_the_session
);
