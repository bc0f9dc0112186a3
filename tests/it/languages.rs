//! The pages' languages: `Accept-Language` chooses (q-values, primary
//! subtags), an authorization request's `ui_locales` wins for every page
//! of its sign-in, English otherwise; discovery lists the languages. Over
//! HTTP on both backends, then in Chromium set to German and English.

use gatehouse_server::clients::ClientSpec;
use reqwest::{
    header::{HeaderMap, HeaderValue, ACCEPT_LANGUAGE, LOCATION, VARY},
    redirect::Policy,
    Response,
};
use serde_json::Value;

use crate::{
    browser::{prerequisites, ChromeDriver},
    support::{hidden, pkce, query_param, spawn_app, DbKind, TestApp},
};

/// A browser (cookies, no redirects followed) whose user reads
/// `languages` (its Accept-Language), if any.
fn browser(languages: Option<&str>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(l) = languages {
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(l).unwrap());
    }
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

fn location(r: &Response) -> String {
    r.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The `<html lang>` of a page.
fn lang(html: &str) -> &str {
    let start = html.find("<html lang=\"").expect("an html element") + 12;
    let len = html[start..].find('"').unwrap();
    &html[start..start + len]
}

/// A page's text with the escapes Gatehouse writes undone.
fn text(html: &str) -> String {
    html.replace("&#x27;", "'").replace("&#x2F;", "/")
}

async fn get(b: &reqwest::Client, app: &TestApp, path_or_url: &str) -> Response {
    let url = if path_or_url.starts_with('/') {
        app.url(path_or_url)
    } else {
        path_or_url.to_owned()
    };
    b.get(url).send().await.unwrap()
}

/// The sign-in page follows the browser's languages: French for French
/// in any variant or weight order, English for a browser whose languages
/// Gatehouse does not speak, without the header, or with one it cannot
/// read; `Vary: Accept-Language` each time.
async fn the_sign_in_page_follows_accept_language(app: &TestApp) {
    for (header, want) in [
        (Some("fr"), "fr"),
        (Some("fr-CA,fr;q=0.9,en;q=0.5"), "fr"),
        (Some("en;q=0.4, fr-BE;q=0.8"), "fr"),
        (Some("de-DE,de;q=0.9,en;q=0.8"), "en"),
        (Some("de, *;q=0.1"), "en"),
        (Some("en;q=0, *"), "fr"),
        (Some("fr;q=7, ;;, =="), "en"),
        (None, "en"),
    ] {
        let r = get(&browser(header), app, "/login").await;
        assert_eq!(r.status(), 200, "{header:?}");
        let vary = r.headers()[VARY].to_str().unwrap().to_ascii_lowercase();
        assert!(vary.contains("accept-language"), "{header:?}: Vary {vary}");
        let html = text(&r.text().await.unwrap());
        assert_eq!(lang(&html), want, "{header:?}");
        if want == "fr" {
            assert!(html.contains("<h1>Connexion</h1>"), "{html}");
            assert!(html.contains("Nom d'utilisateur"), "{html}");
            assert!(html.contains(">Se connecter</button>"), "{html}");
            assert!(html.contains("Sécurisé par Gatehouse"), "{html}");
            assert!(!html.contains("Sign in"), "no English left: {html}");
        } else {
            assert!(html.contains("<h1>Sign in</h1>"), "{html}");
            assert!(html.contains(">Username</label>"), "{html}");
        }
    }
    // A huge header is read only so far, and never fails the page.
    let huge = format!("{}fr", "xx-YY;q=0.5, ".repeat(500));
    let r = get(&browser(Some(&huge)), app, "/login").await;
    assert_eq!(r.status(), 200);
    assert_eq!(lang(&r.text().await.unwrap()), "en");
    let r = app
        .http
        .get(app.url("/login"))
        .header(
            ACCEPT_LANGUAGE,
            HeaderValue::from_bytes(b"fr\xe9, fr").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a header that is not ASCII");
    assert_eq!(lang(&r.text().await.unwrap()), "en");
}

/// An authorization request with `ui_locales=fr-CA en` from a German and
/// English browser: every page of that sign-in is French (the sign-in
/// page, its error, the consent page), and the code comes back. The same
/// browser without `ui_locales` reads English; `ui_locales` naming only
/// languages Gatehouse does not speak leaves the choice to the browser.
async fn ui_locales_speak_for_the_whole_sign_in(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let c = app.web_client().await;
    let b = browser(Some("de-DE,de;q=0.9,en;q=0.8"));
    let (_, challenge) = pkce();
    let url = app.authorize_url(&c, "openid profile", &challenge, "&ui_locales=fr-CA%20en");
    let r = get(&b, app, &url).await;
    assert_eq!(r.status(), 303);
    let to_login = location(&r);
    assert!(to_login.starts_with("/login?tx="), "{to_login}");

    let html = text(&get(&b, app, &to_login).await.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(
        html.contains("pour continuer vers <strong>Example App</strong>"),
        "{html}"
    );
    let (csrf, tx) = (hidden(&html, "csrf"), hidden(&html, "tx"));

    // A wrong password: the page again, with its error, in French.
    let wrong = [
        ("csrf", csrf.as_str()),
        ("tx", tx.as_str()),
        ("username", "erin"),
        ("password", "not her password"),
    ];
    let r = b.post(app.url("/login")).form(&wrong).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let html = text(&r.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(
        html.contains("Nom d'utilisateur ou mot de passe incorrect."),
        "{html}"
    );

    let right = [
        ("csrf", csrf.as_str()),
        ("tx", tx.as_str()),
        ("username", "erin"),
        ("password", "pw-erin-123456"),
    ];
    let r = b.post(app.url("/login")).form(&right).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = get(&b, app, &location(&r)).await;
    assert_eq!(r.status(), 303, "on to consent");
    let to_consent = location(&r);
    assert!(to_consent.starts_with("/consent?tx="), "{to_consent}");
    let r = get(&b, app, &to_consent).await;
    assert!(r.headers()[VARY]
        .to_str()
        .unwrap()
        .contains("accept-language"));
    let html = text(&r.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(html.contains("<h1>Autoriser l'accès\u{a0}?</h1>"), "{html}");
    assert!(html.contains("souhaite accéder à votre compte <strong>erin</strong>"));
    assert!(html.contains("Vous connecter avec votre compte Gatehouse"));
    assert!(html.contains("Votre nom et votre nom d'utilisateur"));
    assert!(html.contains(">Autoriser</button>") && html.contains(">Refuser</button>"));
    let allow = [
        ("csrf", hidden(&html, "csrf")),
        ("tx", hidden(&html, "tx")),
        ("decision", "allow".to_owned()),
    ];
    let r = b
        .post(app.url("/consent"))
        .form(&allow)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = get(&b, app, &location(&r)).await;
    let back = location(&r);
    assert!(back.starts_with(&c.redirect_uri), "{back}");
    assert!(query_param(&back, "code").is_some(), "{back}");

    // The same languages without ui_locales: German is not spoken here,
    // English is.
    let b = browser(Some("de-DE,de;q=0.9,en;q=0.8"));
    let url = app.authorize_url(&c, "openid", &challenge, "");
    let to_login = location(&get(&b, app, &url).await);
    let html = get(&b, app, &to_login).await.text().await.unwrap();
    assert_eq!(lang(&html), "en");
    assert!(
        html.contains("to continue to <strong>Example App</strong>"),
        "{html}"
    );

    // ui_locales first: English asked first wins over a French browser;
    // none spoken here leaves the browser's choice.
    for (ui, accept, want) in [
        ("en fr", "fr", "en"),
        ("de ja", "fr", "fr"),
        ("x_y fr", "en", "fr"),
    ] {
        let b = browser(Some(accept));
        let extra = format!("&ui_locales={}", ui.replace(' ', "%20"));
        let url = app.authorize_url(&c, "openid", &challenge, &extra);
        let to_login = location(&get(&b, app, &url).await);
        let html = get(&b, app, &to_login).await.text().await.unwrap();
        assert_eq!(
            lang(&html),
            want,
            "ui_locales={ui}, Accept-Language {accept}"
        );
    }
}

/// Error pages speak the language too: the request's `ui_locales` before
/// any transaction exists (an unknown client), the browser's for a
/// transaction that cannot be found.
async fn error_pages_are_translated(app: &TestApp) {
    let b = browser(Some("en"));
    let r = get(&b, app, "/authorize?client_id=nobody&ui_locales=fr").await;
    assert_eq!(r.status(), 400);
    let html = text(&r.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(
        html.contains("<h1>Cette demande ne peut pas aboutir</h1>"),
        "{html}"
    );
    assert!(html.contains("L'application qui vous a envoyé ici n'est pas enregistrée."));

    let b = browser(Some("fr-FR"));
    let r = get(&b, app, "/consent?tx=no-such-transaction").await;
    assert_eq!(r.status(), 400);
    let html = text(&r.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(
        html.contains("Cette demande de connexion a expiré"),
        "{html}"
    );

    let r = get(&browser(None), app, "/consent?tx=no-such-transaction").await;
    let html = text(&r.text().await.unwrap());
    assert_eq!(lang(&html), "en");
    assert!(html.contains("This sign-in request has expired"), "{html}");
}

/// Outside a sign-in the browser chooses: a French browser's account page
/// is French, the words the server puts on it too (the device). Signing
/// out follows the relying party's `ui_locales` (RP-Initiated Logout 1.0
/// section 2), the confirmation and the signed-out page alike.
async fn the_account_page_and_signing_out(app: &TestApp) {
    app.create_user("erin", "pw-erin-123456").await;
    let b = browser(Some("fr-FR,fr;q=0.9"));
    let html = get(&b, app, "/login").await.text().await.unwrap();
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("tx", String::new()),
        ("username", "erin".to_owned()),
        ("password", "pw-erin-123456".to_owned()),
    ];
    let r = b.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(location(&r), "/account");
    let html = text(&get(&b, app, "/account").await.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(
        html.contains("Session ouverte en tant que <strong id=\"signed-in-user\">erin</strong>")
    );
    assert!(html.contains("<strong>Appareil inconnu</strong>"), "{html}");
    assert!(html.contains("Au moins 12\u{a0}caractères."), "{html}");

    let r = get(&b, app, "/logout?ui_locales=en-US").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(lang(&html), "en");
    assert!(html.contains("<h1>Sign out?</h1>"), "{html}");
    let form = [
        ("csrf", hidden(&html, "csrf")),
        ("return", hidden(&html, "return")),
        ("decision", "logout".to_owned()),
    ];
    let r = b.post(app.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(lang(&html), "en");
    assert!(html.contains("<h1>You are signed out</h1>"), "{html}");
    // Without ui_locales, the browser's French.
    let html = text(&get(&b, app, "/logout").await.text().await.unwrap());
    assert_eq!(lang(&html), "fr");
    assert!(html.contains("<h1>Déconnexion effectuée</h1>"), "{html}");
}

/// Discovery lists the languages (OIDC Discovery 1.0 section 3).
async fn discovery_lists_the_languages(app: &TestApp) {
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["ui_locales_supported"], serde_json::json!(["en", "fr"]));
}

crate::both_backends!(
    the_sign_in_page_follows_accept_language,
    ui_locales_speak_for_the_whole_sign_in,
    error_pages_are_translated,
    the_account_page_and_signing_out,
    discovery_lists_the_languages,
);

/// In Chromium whose user reads German, then English: a client asking
/// `ui_locales=fr` gets French sign-in and consent pages; without it the
/// pages are English. Screenshots in `tests/artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_german_browser_signs_in_in_french_when_the_client_asks() {
    let Some(driver_path) = prerequisites() else {
        return;
    };
    let app = spawn_app(DbKind::Sqlite).await.unwrap();
    app.create_user("alice", "correct horse battery staple")
        .await;
    // The client's redirect URI answers, so the browser lands somewhere.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/callback", listener.local_addr().unwrap());
    let site = axum::Router::new().route("/callback", axum::routing::get(|| async { "signed in" }));
    tokio::spawn(async move { axum::serve(listener, site).await });
    let c = app
        .create_client(ClientSpec {
            name: "Example App".into(),
            redirect_uris: vec![callback.clone()],
            ..ClientSpec::default()
        })
        .await;
    let driver = ChromeDriver::start(&driver_path).await;
    let b = driver.session_in(Some("de-DE,de,en")).await;
    let (_, challenge) = pkce();

    // The browser's own choice: German is not spoken here, English is.
    b.goto(&app.authorize_url(&c, "openid profile", &challenge, ""))
        .await;
    b.wait_for_page(&app.base, "/login").await;
    assert_eq!(b.text_of("h1").await, "Sign in");

    // The client asks for French.
    let url = app.authorize_url(&c, "openid profile", &challenge, "&ui_locales=fr");
    b.goto(&url).await;
    b.wait_for_page(&app.base, "/login").await;
    assert_eq!(b.text_of("h1").await, "Connexion");
    assert_eq!(
        b.text_of("label[for='username']").await,
        "Nom d'utilisateur"
    );
    b.screenshot("login-fr").await;
    b.type_into("#username", "alice").await;
    b.type_into("#password", "correct horse battery staple")
        .await;
    b.click("form[action='/login'] button[type='submit']").await;

    b.wait_for_page(&app.base, "/consent").await;
    b.wait_for("button[name='decision'][value='allow']").await;
    // (WebDriver reads the no-break space before "?" as a space.)
    assert_eq!(
        b.text_of("h1").await.replace('\u{a0}', " "),
        "Autoriser l'accès ?"
    );
    let page = b.body_text().await;
    assert!(
        page.contains("souhaite accéder à votre compte alice"),
        "{page}"
    );
    assert!(
        page.contains("Votre nom et votre nom d'utilisateur"),
        "{page}"
    );
    assert_eq!(
        b.text_of("button[name='decision'][value='allow']").await,
        "Autoriser"
    );
    b.screenshot("consent-fr").await;
    b.click("button[name='decision'][value='allow']").await;
    // Back at the client with a code.
    let origin = callback.trim_end_matches("/callback");
    let back = b.wait_for_page(origin, "/callback").await;
    assert!(query_param(&back, "code").is_some(), "{back}");
    b.close().await;
    app.stop().await;
}
