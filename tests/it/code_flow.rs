//! The authorization code flow driven by the `openidconnect` crate as the
//! relying party: it fetches discovery and the JWKS, validates the ID token
//! (signature, iss, aud, exp, nonce) and we check at_hash with it.

use gatehouse_server::clients::ClientSpec;
use openidconnect::{
    core::{
        CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
        CoreUserInfoClaims,
    },
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::support::{query_param, TestApp};

fn rp_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn run_flow(app: &TestApp, alg: Option<&str>) {
    app.create_user("alice", "correct horse battery staple")
        .await;
    let c = app
        .create_client(ClientSpec {
            name: "RP".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            id_token_signing_alg: alg.map(str::to_owned),
            ..ClientSpec::default()
        })
        .await;
    let http = rp_http();
    let meta =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .unwrap();
    let rp = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(c.id.clone()),
        c.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(c.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = app
        .authorize_in_browser(url.as_str(), "alice", "correct horse battery staple")
        .await;
    assert!(back.starts_with(&c.redirect_uri), "{back}");
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.base.as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&back, "code").unwrap();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let mut id_verifier = rp.id_token_verifier();
    if let Some(a) = alg {
        let a = match a {
            "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            "PS256" => CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
            _ => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        };
        id_verifier = id_verifier.set_allowed_algs(vec![a]);
    }
    let claims = id_token.claims(&id_verifier, &nonce).unwrap();
    assert_eq!(claims.issuer().as_str(), app.base);
    assert_eq!(claims.preferred_username().unwrap().as_str(), "alice");
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    assert!(claims.auth_time().is_some());
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected);
    // The access token is a JWE: five parts, unreadable by the client.
    assert_eq!(tokens.access_token().secret().split('.').count(), 5);
    assert!(
        tokens.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");

    // Single sign-on: the session answers prompt=none without a login page.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_prompt(openidconnect::core::CoreAuthPrompt::None)
        .set_pkce_challenge(challenge)
        .url();
    let r = app.browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(query_param(loc, "code").is_some(), "{loc}");
}

async fn code_flow_rs256(app: &TestApp) {
    run_flow(app, None).await;
}

async fn code_flow_es256(app: &TestApp) {
    run_flow(app, Some("ES256")).await;
}

/// EdDSA ID tokens, on a server whose operator added EdDSA to
/// `signing_algs` (it is not published by default).
mod eddsa {
    use gatehouse_server::config::RawConfig;

    use crate::support::{spawn_app_with, DbKind};

    async fn run(kind: DbKind) {
        let config = RawConfig {
            signing_algs: Some(vec!["RS256".into(), "ES256".into(), "EdDSA".into()]),
            ..RawConfig::default()
        };
        let Some(app) = spawn_app_with(kind, config).await else {
            return;
        };
        super::run_flow(&app, Some("EdDSA")).await;
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn code_flow_eddsa_sqlite() {
        run(DbKind::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn code_flow_eddsa_postgres() {
        run(DbKind::Postgres).await;
    }
}

/// Without a session, prompt=none returns login_required to the client.
/// (These requests leave PKCE out, as a confidential client may in an
/// OpenID request with a nonce.)
async fn prompt_none_without_session(app: &TestApp) {
    let c = app.web_client().await;
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=s1&prompt=none&nonce=n-1",
        app.url("/authorize"),
        c.id,
        urlenc(&c.redirect_uri)
    );
    let r = app.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(loc, "state").as_deref(), Some("s1"));
    assert_eq!(query_param(loc, "iss").as_deref(), Some(app.base.as_str()));
}

/// form_post response mode delivers the code in an auto-submitting form.
async fn form_post_response_mode(app: &TestApp) {
    app.create_user("bob", "pw-bob-123456").await;
    let c = app.web_client().await;
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid&state=xyz&response_mode=form_post&nonce=n-1",
        app.url("/authorize"),
        c.id,
        urlenc(&c.redirect_uri)
    );
    // Log in and consent first (query mode), then ask with form_post.
    let _ = app
        .authorize_in_browser(
            &url.replace("&response_mode=form_post", ""),
            "bob",
            "pw-bob-123456",
        )
        .await;
    let r = app.browser.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "action=\"{}\"",
            c.redirect_uri.replace('/', "&#x2F;")
        )) || html.contains(&format!("action=\"{}\"", c.redirect_uri)),
        "{html}"
    );
    assert!(html.contains("name=\"code\""));
    assert!(html.contains("name=\"state\" value=\"xyz\""));
}

/// Consent is remembered; denying it sends access_denied.
async fn consent_denied(app: &TestApp) {
    app.create_user("carol", "pw-carol-123456").await;
    let c = app.web_client().await;
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&scope=openid%20email&state=d1&nonce=n-1",
        app.url("/authorize"),
        c.id,
        urlenc(&c.redirect_uri)
    );
    let r = app.browser.get(&url).send().await.unwrap();
    let login = app.url(r.headers()["location"].to_str().unwrap());
    let html = app
        .browser
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::support::hidden(&html, "csrf");
    let tx = crate::support::hidden(&html, "tx");
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("tx", tx.as_str()),
            ("username", "carol"),
            ("password", "pw-carol-123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let next = app.url(r.headers()["location"].to_str().unwrap());
    let r = app.browser.get(&next).send().await.unwrap();
    let consent = app.url(r.headers()["location"].to_str().unwrap());
    let html = app
        .browser
        .get(&consent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Example App"));
    let csrf = crate::support::hidden(&html, "csrf");
    let tx = crate::support::hidden(&html, "tx");
    let r = app
        .browser
        .post(app.url("/consent"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("tx", tx.as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap();
    assert_eq!(query_param(loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(loc, "state").as_deref(), Some("d1"));
}

pub fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

crate::both_backends!(
    code_flow_rs256,
    code_flow_es256,
    prompt_none_without_session,
    form_post_response_mode,
    consent_denied
);
