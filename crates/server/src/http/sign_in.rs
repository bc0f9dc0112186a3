//! The mark of a sign-in performed during an authorization request (OIDC
//! Core 3.1.2.1: `max_age`, even 0, is met by it), without server-side
//! state: after login, the browser goes back to the request with
//! [`SIGN_IN_PARAM`] added, a keyed hash binding the new session to the
//! request's other parameters.

use gatehouse_storage::model::Session;

use super::{
    authorize::{authorize_query, AuthRequest},
    form::Params,
};
use crate::state::AppState;

/// The parameter a sign-in adds to the authorization request it was made
/// for: a keyed hash binding that session (its `sid` and `auth_time`) to
/// the request's other parameters. Coming back with it, the request counts
/// as authenticated during this authorization, so `max_age` (even 0) is
/// satisfied (OIDC Core 3.1.2.1) instead of sending the user to sign in
/// again. Another browser (another session), another request, or the same
/// one after [`SIGN_IN_WINDOW`] does not match.
pub const SIGN_IN_PARAM: &str = "gh_signin";

/// How long after a sign-in its mark still counts, in seconds (time for
/// the consent page).
pub const SIGN_IN_WINDOW: i64 = 600;

fn sign_in_mac_input(session: &Session, params: &Params) -> String {
    let mut p = params.clone();
    p.set(SIGN_IN_PARAM, None);
    // `prompt` is rewritten on the way through login and consent.
    p.set("prompt", None);
    format!(
        "gatehouse sign-in v1\n{}\n{}\n{}",
        session.sid,
        session.auth_time,
        p.to_query()
    )
}

/// The return URL after `session` was started for it: the same request,
/// marked with [`SIGN_IN_PARAM`]. Anything but a well-formed local
/// authorization request is returned unchanged.
pub fn mark_signed_in(state: &AppState, return_to: &str, session: &Session) -> String {
    let Some(q) = authorize_query(return_to) else {
        return return_to.to_owned();
    };
    let (mut p, duplicate, too_many) = Params::parse_lenient(q.as_bytes());
    if duplicate.is_some() || too_many {
        return return_to.to_owned();
    }
    let mac = state.hasher.hash(&sign_in_mac_input(session, &p));
    p.set(SIGN_IN_PARAM, Some(mac));
    format!("/authorize?{}", p.to_query())
}

/// Whether `session` was started for this very request, recently.
pub fn signed_in_for(state: &AppState, req: &AuthRequest, session: &Session, now: i64) -> bool {
    let Some(mark) = req.params.get(SIGN_IN_PARAM) else {
        return false;
    };
    (0..=SIGN_IN_WINDOW).contains(&(now - session.auth_time))
        && state
            .hasher
            .matches(&sign_in_mac_input(session, &req.params), mark)
}
