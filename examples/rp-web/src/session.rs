//! The app's own sessions: an in-memory map keyed by a random cookie value.
//! A session holds the flows in progress (state, nonce, PKCE verifier), the
//! signed-in user's claims and ID token, a CSRF token for the sign-out form
//! and the state of a logout in progress. Sessions live in memory only: a
//! restart signs everybody out of the app (not of Gatehouse).

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use axum::http::{header, HeaderMap, HeaderValue};
use openidconnect::CsrfToken;

use crate::oidc::{Pending, SignedIn};

/// The cookie's name.
pub const COOKIE: &str = "rp_session";
/// A session unused for this long is dropped.
const IDLE: Duration = Duration::from_secs(8 * 3600);
/// A sign-in must come back within this time.
const FLOW_TTL: Duration = Duration::from_secs(600);
/// Flows in progress kept per session (several tabs).
const MAX_FLOWS: usize = 4;
/// Sessions kept at most; beyond, new ones are refused.
const MAX_SESSIONS: usize = 100_000;

/// One browser's session.
struct Session {
    last_seen: Instant,
    csrf: String,
    flows: Vec<(Instant, Pending)>,
    user: Option<SignedIn>,
    logout_state: Option<CsrfToken>,
}

impl Session {
    fn new() -> Self {
        Session {
            last_seen: Instant::now(),
            csrf: random(),
            flows: Vec::new(),
            user: None,
            logout_state: None,
        }
    }
}

/// What the home page shows.
pub struct HomeView {
    pub user: Option<SignedIn>,
    pub csrf: String,
    /// The browser just came back from Gatehouse's logout with our state.
    pub just_signed_out: bool,
}

/// All sessions.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

/// A fresh random value (128 bits, base64url), as the crate makes states.
fn random() -> String {
    CsrfToken::new_random().secret().clone()
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere cannot leave the map half-updated: every update
        // is a single insert or remove.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn prune(map: &mut HashMap<String, Session>) {
        map.retain(|_, s| s.last_seen.elapsed() < IDLE);
    }

    /// Inserts a session under a new id; `None` when full.
    fn insert(map: &mut HashMap<String, Session>, s: Session) -> Option<String> {
        Self::prune(map);
        if map.len() >= MAX_SESSIONS {
            return None;
        }
        let id = format!("{}{}", random(), random());
        map.insert(id.clone(), s);
        Some(id)
    }

    /// Remembers a flow in progress in the browser's session (created if
    /// needed). Returns the session id, new or not; `None` when full.
    pub fn start_flow(&self, id: Option<&str>, pending: Pending) -> Option<String> {
        let mut map = self.lock();
        if let Some((id, s)) = id.and_then(|id| map.get_mut(id).map(|s| (id, s))) {
            s.last_seen = Instant::now();
            s.flows.retain(|(t, _)| t.elapsed() < FLOW_TTL);
            if s.flows.len() >= MAX_FLOWS {
                s.flows.remove(0);
            }
            s.flows.push((Instant::now(), pending));
            return Some(id.to_owned());
        }
        let mut s = Session::new();
        s.flows.push((Instant::now(), pending));
        Self::insert(&mut map, s)
    }

    /// Takes the flow whose state is `state` (compared in constant time).
    pub fn take_flow(&self, id: &str, state: &str) -> Option<Pending> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        s.last_seen = Instant::now();
        s.flows.retain(|(t, _)| t.elapsed() < FLOW_TTL);
        let wanted = CsrfToken::new(state.to_owned());
        let i = s.flows.iter().position(|(_, p)| p.state == wanted)?;
        Some(s.flows.remove(i).1)
    }

    /// Signs the user in: the old session is replaced by a new one under a
    /// new id (no session fixation). Returns the new id.
    pub fn sign_in(&self, old_id: &str, user: SignedIn) -> Option<String> {
        let mut map = self.lock();
        let mut s = map.remove(old_id).unwrap_or_else(Session::new);
        s.last_seen = Instant::now();
        s.csrf = random();
        s.user = Some(user);
        s.logout_state = None;
        Self::insert(&mut map, s)
    }

    /// The home page's view of the session; consumes a matching logout state.
    pub fn home(&self, id: Option<&str>, state: Option<&str>) -> HomeView {
        let mut map = self.lock();
        let Some(s) = id.and_then(|id| map.get_mut(id)) else {
            return HomeView {
                user: None,
                csrf: String::new(),
                just_signed_out: false,
            };
        };
        s.last_seen = Instant::now();
        let just_signed_out = match (state, &s.logout_state) {
            (Some(got), Some(want)) => CsrfToken::new(got.to_owned()) == *want,
            _ => false,
        };
        if just_signed_out {
            s.logout_state = None;
        }
        HomeView {
            user: s.user.clone(),
            csrf: s.csrf.clone(),
            just_signed_out,
        }
    }

    /// Signs the user out of the app if `csrf` is the session's token.
    /// Returns the ID token (for `id_token_hint`) and a new logout state,
    /// or `None` when nobody was signed in or the token is wrong.
    pub fn sign_out(
        &self,
        id: &str,
        csrf: &str,
    ) -> Option<(openidconnect::core::CoreIdToken, CsrfToken)> {
        let mut map = self.lock();
        let s = map.get_mut(id)?;
        if CsrfToken::new(csrf.to_owned()) != CsrfToken::new(s.csrf.clone()) {
            return None;
        }
        let user = s.user.take()?;
        let state = CsrfToken::new_random();
        s.logout_state = Some(state.clone());
        s.csrf = random();
        Some((user.id_token, state))
    }
}

/// The session id from the request's cookies.
pub fn read_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The `Set-Cookie` value for a session id: HttpOnly, SameSite=Lax (so it
/// comes back on the redirect from Gatehouse), Secure over https.
pub fn set_cookie(id: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}
