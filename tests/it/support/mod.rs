//! `spawn_app()` and request helpers.

pub mod configured;
pub mod proxy;
pub use gatehouse_testkit::{db, pg_server, sqlite_sound};

use std::sync::Arc;

pub use db::DbKind;
use gatehouse_keys::{Kek, ManualClock};
use gatehouse_server::{
    clients::{build, ClientSpec},
    config::{RawConfig, Settings},
    state::AppState,
    Server,
};
use gatehouse_storage::{model::User, Store};

/// A running Gatehouse on 127.0.0.1 with its own database.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub clock: ManualClock,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub browser: reqwest::Client,
    /// A plain client for API calls.
    pub http: reqwest::Client,
    server: Option<Server>,
    kek: Kek,
    db_url: String,
    _db: Option<db::TestDb>,
}

/// A registered client with its secret.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// Starts Gatehouse against a fresh database. `None` when the backend is
/// not available (PostgreSQL without its URL, outside CI).
pub async fn spawn_app(kind: DbKind) -> Option<TestApp> {
    spawn_issued(kind, None).await
}

/// Asks [`start`] for the issuer `http://localhost:<its port>`.
pub const LOCALHOST: &str = "http://localhost";

/// Like [`spawn_app`], with the issuer `http://localhost:<port>`: the
/// WebAuthn relying party id must be a host name.
pub async fn spawn_localhost(kind: DbKind) -> Option<TestApp> {
    spawn_issued(kind, Some(LOCALHOST)).await
}

/// Like [`spawn_app`], with the issuer `issuer` (for example a proxy's
/// origin in front of several instances).
pub async fn spawn_with_issuer(kind: DbKind, issuer: &str) -> Option<TestApp> {
    spawn_issued(kind, Some(issuer)).await
}

async fn spawn_issued(kind: DbKind, issuer: Option<&str>) -> Option<TestApp> {
    let db = db::fresh(kind).await?;
    let url = db.url.clone();
    Some(
        start(
            url,
            Kek::generate(),
            Some(db),
            ManualClock::default(),
            issuer.map(str::to_owned),
            RawConfig::default(),
        )
        .await,
    )
}

/// Like [`spawn_app`], with configuration options set in `extra` (for
/// example `require_pkce`).
pub async fn spawn_app_with(kind: DbKind, extra: RawConfig) -> Option<TestApp> {
    let db = db::fresh(kind).await?;
    let url = db.url.clone();
    Some(
        start(
            url,
            Kek::generate(),
            Some(db),
            ManualClock::default(),
            None,
            extra,
        )
        .await,
    )
}

pub(crate) async fn start(
    db_url: String,
    kek: Kek,
    db: Option<db::TestDb>,
    clock: ManualClock,
    issuer: Option<String>,
    extra: RawConfig,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A named issuer on this port (passkeys need a host name, not an IP).
    let (base, issuer) = match issuer.as_deref() {
        Some(LOCALHOST) => {
            let named = format!("http://localhost:{}", addr.port());
            (named.clone(), Some(named))
        }
        _ => (format!("http://{addr}"), issuer),
    };
    // `extra` wins over the usual test configuration.
    let raw = extra.over(RawConfig {
        issuer: Some(issuer.unwrap_or_else(|| base.clone())),
        database_url: Some(db_url.clone()),
        key_prepublish: Some(3600),
        ..RawConfig::default()
    });
    let settings = Settings::resolve(raw, Some(kek.to_base64url())).unwrap();
    let store = Store::connect_with(&db_url, settings.store_options())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let state =
        gatehouse_server::build_state(settings, store, kek.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
    let server = Server::start_on(state.clone(), listener).await.unwrap();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base,
        state,
        clock,
        browser,
        http,
        server: Some(server),
        kek,
        db_url,
        _db: db,
    }
}

impl TestApp {
    /// A second Gatehouse instance on the same database and key-encryption
    /// key (as behind a load balancer), with its own port and cookie jar.
    pub async fn second_instance(&self) -> TestApp {
        start(
            self.db_url.clone(),
            self.kek.clone(),
            None,
            self.clock.clone(),
            Some(self.state.settings.issuer.clone()),
            RawConfig::default(),
        )
        .await
    }

    /// Another Gatehouse on the same database and key-encryption key but
    /// with its own issuer (another origin, another WebAuthn RP id).
    pub async fn instance_with_issuer(&self, issuer: &str) -> TestApp {
        start(
            self.db_url.clone(),
            self.kek.clone(),
            None,
            self.clock.clone(),
            Some(issuer.to_owned()),
            RawConfig::default(),
        )
        .await
    }

    /// The database this instance uses (to reach it behind the app's back).
    pub fn db_url(&self) -> &str {
        &self.db_url
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates a user with a password, as `gatehouse users create` does.
    pub async fn create_user(&self, username: &str, password: &str) -> User {
        let now = self.clock_now();
        let user = User {
            id: uuid::Uuid::new_v4().to_string().into(),
            username: username.to_owned(),
            email: Some(format!("{username}@example.com")),
            email_verified: true,
            name: Some(format!("{username} Example")),
            password_hash: gatehouse_server::password::hash(password).unwrap(),
            disabled: false,
            created_at: now,
            updated_at: now,
            mfa_required: false,
        };
        self.state.store.create_user(&user).await.unwrap();
        user
    }

    fn clock_now(&self) -> i64 {
        use gatehouse_keys::Clock;
        self.clock.now()
    }

    /// Registers a client, as `gatehouse clients create` does.
    pub async fn create_client(&self, spec: ClientSpec) -> TestClient {
        let redirect_uri = spec.redirect_uris.first().cloned().unwrap_or_default();
        let (client, secret) = build(
            spec,
            &self.state.hasher,
            &self.state.sealer,
            self.clock_now(),
            &self.state.settings.outbound,
        )
        .unwrap();
        self.state.store.create_client(&client).await.unwrap();
        TestClient {
            id: client.id.into_string(),
            secret,
            redirect_uri,
        }
    }

    /// A confidential web client with the default grants.
    /// A fresh initial access token for `/register` (RFC 7591 3), valid
    /// for ten minutes, carrying `policy` (`None`: the default policy).
    pub async fn initial_access_token(
        &self,
        policy: Option<&gatehouse_storage::model::RegistrationPolicy>,
    ) -> String {
        let token = gatehouse_server::secrets::random_token();
        let now = self.state.now();
        self.state
            .store
            .create_registration_token_with_policy(
                &self.state.hasher.hash(&token),
                Some(now + 600),
                None,
                policy,
                now,
            )
            .await
            .unwrap();
        token
    }

    pub async fn web_client(&self) -> TestClient {
        self.create_client(ClientSpec {
            name: "Example App".into(),
            redirect_uris: vec!["http://127.0.0.1:9999/callback".into()],
            post_logout_redirect_uris: vec!["http://127.0.0.1:9999/signed-out".into()],
            ..ClientSpec::default()
        })
        .await
    }

    /// Runs the browser part of the code flow with this app's cookie jar:
    /// follows redirects through login and consent, and returns the final
    /// redirect to the client (the Location header).
    pub async fn authorize_in_browser(
        &self,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> String {
        let mut next = authorize_url.to_owned();
        for _ in 0..10 {
            let r = self.browser.get(&next).send().await.unwrap();
            let status = r.status();
            if status.is_redirection() {
                let loc = r.headers()["location"].to_str().unwrap().to_owned();
                let loc = if loc.starts_with('/') {
                    self.url(&loc)
                } else {
                    loc
                };
                if !loc.starts_with(&self.base) {
                    return loc;
                }
                next = loc;
                continue;
            }
            assert_eq!(status, 200, "unexpected status at {next}");
            let html = r.text().await.unwrap();
            let csrf = hidden(&html, "csrf");
            let tx = hidden(&html, "tx");
            let resp = if html.contains("action=\"/login\"") {
                self.browser
                    .post(self.url("/login"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("tx", tx.as_str()),
                        ("username", username),
                        ("password", password),
                    ])
                    .send()
                    .await
                    .unwrap()
            } else if html.contains("action=\"/consent\"") {
                self.browser
                    .post(self.url("/consent"))
                    .form(&[
                        ("csrf", csrf.as_str()),
                        ("tx", tx.as_str()),
                        ("decision", "allow"),
                    ])
                    .send()
                    .await
                    .unwrap()
            } else {
                panic!("unexpected page at {next}: {html}");
            };
            assert_eq!(resp.status(), 303, "form post must answer 303");
            let loc = resp.headers()["location"].to_str().unwrap().to_owned();
            next = if loc.starts_with('/') {
                self.url(&loc)
            } else {
                loc
            };
            if !next.starts_with(&self.base) {
                return next;
            }
        }
        panic!("too many redirects");
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.unwrap();
        }
    }
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let Some(start) = html.find(&marker) else {
        return String::new();
    };
    let rest = &html[start + marker.len()..];
    let end = rest.find('"').unwrap();
    html_unescape(&rest[..end])
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Generates two `#[tokio::test]`s, one per backend, from one async test body.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::support::spawn_app($crate::support::DbKind::Sqlite).await.unwrap();
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = $crate::support::spawn_app($crate::support::DbKind::Postgres).await else { return };
                    super::$name(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl TestApp {
    /// An authorization URL for `c` with S256 PKCE, plus extra raw query.
    pub fn authorize_url(
        &self,
        c: &TestClient,
        scope: &str,
        challenge: &str,
        extra: &str,
    ) -> String {
        let enc =
            |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
        format!(
            "{}?client_id={}&redirect_uri={}&response_type=code&scope={}&state=st&code_challenge={}&code_challenge_method=S256{}",
            self.url("/authorize"),
            c.id,
            enc(&c.redirect_uri),
            enc(scope),
            challenge,
            extra
        )
    }

    /// Signs `username` in (creating the user on first use) and returns a
    /// fresh code for `c` with its PKCE verifier.
    pub async fn code(&self, c: &TestClient, scope: &str, extra: &str) -> (String, String) {
        if self
            .state
            .store
            .user_by_username("dave")
            .await
            .unwrap()
            .is_none()
        {
            self.create_user("dave", "pw-dave-123456").await;
        }
        let (verifier, challenge) = pkce();
        let back = self
            .authorize_in_browser(
                &self.authorize_url(c, scope, &challenge, extra),
                "dave",
                "pw-dave-123456",
            )
            .await;
        (
            query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}")),
            verifier,
        )
    }

    /// POSTs a form to the token endpoint with Basic client authentication.
    pub async fn token(&self, c: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(self.url("/token")).form(form);
        if let Some(s) = &c.secret {
            req = req.basic_auth(&c.id, Some(s));
        }
        req.send().await.unwrap()
    }

    /// Redeems a code; returns the JSON body (status must be 200).
    pub async fn redeem(&self, c: &TestClient, code: &str, verifier: &str) -> serde_json::Value {
        let r = self.redeem_response(c, code, verifier).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().await.unwrap()
    }

    /// Presents a code at the token endpoint; the response, whatever it is.
    pub async fn redeem_response(
        &self,
        c: &TestClient,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        self.token(
            c,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &c.redirect_uri),
                ("code_verifier", verifier),
                ("client_id", &c.id),
            ],
        )
        .await
    }

    /// Presents a refresh token at the token endpoint; the response.
    pub async fn refresh(&self, c: &TestClient, refresh_token: &str) -> reqwest::Response {
        self.token(
            c,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &c.id),
            ],
        )
        .await
    }
}

/// POSTs `token` to the introspection endpoint as client `c`; the JSON answer.
pub async fn introspect(app: &TestApp, c: &TestClient, token: &str) -> serde_json::Value {
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The status of a userinfo request with `token`.
pub async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The published JWK with `kid`, from the issuer's `/jwks`.
pub async fn published_jwk(app: &TestApp, kid: &str) -> josekit::jwk::Jwk {
    let jwks: serde_json::Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not published"));
    josekit::jwk::Jwk::from_bytes(key.to_string().as_bytes()).unwrap()
}

/// Registers a resource server `audience` (JWE tokens, ES256, scope
/// `read`) with a fresh ECDH-ES+A256KW key; returns the key pair, so the
/// test can decrypt its tokens as the API would.
pub async fn ecdh_api(app: &TestApp, audience: &str) -> josekit::jwk::alg::ec::EcKeyPair {
    let kp = josekit::jwe::ECDH_ES_A256KW
        .generate_ec_key_pair(josekit::jwk::alg::ec::EcCurve::P256)
        .unwrap();
    let mut jwk: serde_json::Value =
        serde_json::from_str(&kp.to_jwk_public_key().to_string()).unwrap();
    jwk["alg"] = "ECDH-ES+A256KW".into();
    jwk["kid"] = "api".into();
    app.state
        .store
        .create_resource(&gatehouse_storage::model::ResourceServer {
            audience: audience.into(),
            encryption_jwk: jwk.to_string(),
            signing_alg: "ES256".parse().unwrap(),
            token_format: "jwe".parse().unwrap(),
            access_token_lifetime: None,
            scopes: vec!["read".into()],
            created_at: 0,
            clients: Vec::new(),
            allow_exchange_from: Vec::new(),
        })
        .await
        .unwrap();
    kp
}

/// Revokes `token` at `/revoke` (RFC 7009) as client `c`; always 200.
pub async fn revoke(app: &TestApp, c: &TestClient, token: &str) {
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
