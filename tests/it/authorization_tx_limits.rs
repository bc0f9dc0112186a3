//! What an anonymous `/authorize` may make Gatehouse store: free-form
//! parameters have a cap each (over it: `invalid_request` at the redirect
//! URI, nothing stored), and one client IP starts a bounded number of
//! authorization transactions per minute (beyond: `temporarily_unavailable`).

use gatehouse_server::http::authorize::MAX_STARTS_PER_MINUTE;

use crate::support::{pkce, query_param, TestApp};

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn live_transactions(app: &TestApp) -> u64 {
    app.state
        .store
        .count_live_authorization_txs(app.state.now())
        .await
        .unwrap()
}

/// A signed-out request with `extra` (raw query), answered with a redirect.
async fn authorize(app: &TestApp, c: &crate::support::TestClient, extra: &str) -> String {
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid&code_challenge={}&code_challenge_method=S256{extra}",
        app.url("/authorize"),
        c.id,
        enc(&c.redirect_uri),
        pkce().1,
    );
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn oversized_parameters_are_refused_and_not_stored(app: &TestApp) {
    let c = app.web_client().await;
    // 60 KB: about what fits in a request line.
    let huge = "s".repeat(60 * 1024);
    let loc = authorize(app, &c, &format!("&state={huge}")).await;
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    assert_eq!(
        query_param(&loc, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(
        query_param(&loc, "error_description").as_deref(),
        Some("state is longer than 4096 bytes")
    );
    assert_eq!(query_param(&loc, "state"), None, "not echoed");
    assert_eq!(query_param(&loc, "iss").as_deref(), Some(app.base.as_str()));
    for (name, max) in [("nonce", 512), ("login_hint", 512), ("acr_values", 512)] {
        let loc = authorize(app, &c, &format!("&state=S&{name}={}", "n".repeat(max + 1))).await;
        assert_eq!(
            query_param(&loc, "error_description"),
            Some(format!("{name} is longer than {max} bytes")),
            "{loc}"
        );
        assert_eq!(query_param(&loc, "state").as_deref(), Some("S"));
        // At the cap, the request goes on to the sign-in page.
        let ok = authorize(app, &c, &format!("&{name}={}", "n".repeat(max))).await;
        assert!(ok.starts_with("/login?tx="), "{ok}");
    }
    assert_eq!(
        live_transactions(app).await,
        3,
        "only the requests within the caps"
    );
}

/// A 100 KB `state`, longer than an HTTP client library lets a URL be,
/// sent over a bare connection: the HTTP layer refuses a request target
/// over 64 KiB (414) before `/authorize` sees it; nothing is kept.
async fn a_100_kb_state_is_refused_and_not_stored(app: &TestApp) {
    use std::io::{Read, Write};

    let c = app.web_client().await;
    let target = format!(
        "/authorize?client_id={}&redirect_uri={}&response_type=code&scope=openid&code_challenge={}&code_challenge_method=S256&state={}",
        c.id,
        enc(&c.redirect_uri),
        pkce().1,
        "s".repeat(100 * 1024),
    );
    let addr = app.base.trim_start_matches("http://").to_owned();
    let head = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(
        head.starts_with("HTTP/1.1 414"),
        "{}",
        &head[..head.len().min(300)]
    );
    assert_eq!(live_transactions(app).await, 0);
}

async fn a_flood_from_one_ip_stays_under_the_cap(app: &TestApp) {
    let c = app.web_client().await;
    let cap = u64::from(MAX_STARTS_PER_MINUTE);
    for i in 0..cap + 10 {
        let loc = authorize(app, &c, "&state=S").await;
        if i < cap {
            assert!(loc.starts_with("/login?tx="), "{i}: {loc}");
        } else {
            assert!(loc.starts_with(&c.redirect_uri), "{loc}");
            assert_eq!(
                query_param(&loc, "error").as_deref(),
                Some("temporarily_unavailable")
            );
            assert_eq!(query_param(&loc, "state").as_deref(), Some("S"));
        }
    }
    assert_eq!(live_transactions(app).await, cap);
    // The next minute, this IP may start transactions again.
    app.clock.advance(61);
    let loc = authorize(app, &c, "").await;
    assert!(loc.starts_with("/login?tx="), "{loc}");
}

crate::both_backends!(
    oversized_parameters_are_refused_and_not_stored,
    a_100_kb_state_is_refused_and_not_stored,
    a_flood_from_one_ip_stays_under_the_cap
);
