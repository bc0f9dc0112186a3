//! The account page itself: what it shows of her sessions, factors,
//! passkeys and consents, and how (devices named from the stored browser
//! string, times in UTC).

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Serialize;
use tera::Context;

use super::{with_cookie, Signed};
use crate::{
    authorization::decide::factors_of,
    http::{consent::describe, error::AppError, session},
    i18n::Msg,
    state::AppState,
    views,
};

/// Which field of the password form an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum PasswordField {
    Current,
    New,
    Again,
}

/// An error of the password form, tied to its field.
pub(super) struct PasswordError {
    pub field: PasswordField,
    pub message: Msg,
}

/// How the page is answered this time.
pub(super) struct Page {
    pub status: StatusCode,
    pub notice: Option<Msg>,
    pub password_error: Option<PasswordError>,
}

#[derive(Serialize)]
struct SessionView {
    sid: String,
    device: String,
    ip: Option<String>,
    created: Time,
    last_seen: Time,
    current: bool,
}

#[derive(Serialize)]
struct PasskeyView {
    credential_id: String,
    name: String,
    created: Time,
    last_used: Option<Time>,
}

#[derive(Serialize)]
struct ScopeView {
    name: String,
    description: String,
}

#[derive(Serialize)]
struct ConsentView {
    client_id: String,
    client_name: String,
    scopes: Vec<ScopeView>,
    granted: Time,
}

/// A time as shown (`2025-01-31 14:05 UTC`) and as `<time datetime>`.
#[derive(Serialize)]
struct Time {
    text: String,
    iso: String,
}

impl Time {
    fn at(unix: i64) -> Time {
        let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
        let secs = unix.rem_euclid(86_400);
        let (h, min, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
        Time {
            text: format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02} UTC"),
            iso: format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z"),
        }
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A short name for the browser a session started in: "Firefox on
/// Linux" from its User-Agent, else the string's beginning.
fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.map(str::trim).filter(|u| !u.is_empty()) else {
        return Msg::UnknownDevice.text();
    };
    let has = |s: &str| ua.contains(s);
    let browser = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        Some("Chrome")
    } else if has("Safari/") {
        Some("Safari")
    } else {
        None
    };
    let os = if has("iPhone") {
        Some("iPhone")
    } else if has("iPad") {
        Some("iPad")
    } else if has("Android") {
        Some("Android")
    } else if has("Windows") {
        Some("Windows")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Macintosh") || has("Mac OS X") {
        Some("macOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, os) {
        (Some(b), Some(o)) => Msg::Device {
            browser: b.to_owned(),
            os: o.to_owned(),
        }
        .text(),
        (Some(one), None) | (None, Some(one)) => one.to_owned(),
        (None, None) => {
            const SHOWN: usize = 40;
            let mut short: String = ua.chars().take(SHOWN).collect();
            if ua.chars().nth(SHOWN).is_some() {
                short.push('\u{2026}');
            }
            short
        }
    }
}

/// Renders the account page.
pub(super) async fn render(
    state: &AppState,
    headers: &HeaderMap,
    signed: &Signed,
    page: Page,
) -> Response {
    match context(state, signed).await {
        Ok(mut ctx) => {
            let (csrf, cookie) = session::csrf_token(state, headers);
            ctx.insert("csrf", &csrf);
            ctx.insert("notice", &page.notice.as_ref().map(Msg::text));
            ctx.insert(
                "password_error",
                &page.password_error.as_ref().map(|e| e.message.text()),
            );
            ctx.insert(
                "password_error_field",
                &page.password_error.as_ref().map(|e| e.field),
            );
            with_cookie(views::page(page.status, "account.html", &ctx), cookie)
        }
        Err(e) => e.into_page_response(),
    }
}

/// What the page shows of the account, read fresh.
async fn context(state: &AppState, signed: &Signed) -> Result<Context, AppError> {
    let user = &signed.user;
    let sessions: Vec<SessionView> = state
        .store
        .sessions_of_user(&user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.sid == signed.session.sid,
            device: device(s.user_agent.as_deref()),
            ip: s.ip,
            created: Time::at(s.created_at),
            last_seen: Time::at(s.last_seen_at),
            sid: s.sid,
        })
        .collect();
    let totp = factors_of(state, user).await?.totp;
    let codes = state.store.recovery_codes(&user.id).await?;
    let unused = codes.iter().filter(|c| c.used_at.is_none()).count();
    let mut used: Vec<i64> = codes.iter().filter_map(|c| c.used_at).collect();
    used.sort_unstable();
    let used: Vec<Time> = used.into_iter().map(Time::at).collect();
    let passkeys_enabled = state.passkeys.enabled();
    let passkeys: Vec<PasskeyView> = if passkeys_enabled {
        state
            .store
            .passkeys_of_user(&user.id)
            .await?
            .into_iter()
            .map(|p| PasskeyView {
                name: if p.name.trim().is_empty() {
                    Msg::DefaultPasskeyName.text()
                } else {
                    p.name
                },
                created: Time::at(p.created_at),
                last_used: p.last_used_at.map(Time::at),
                credential_id: p.credential_id,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut consents = Vec::new();
    for c in state.store.consents_of_user(&user.id).await? {
        // A client deleted since, or one this release cannot read, is
        // still listed (by its id) so its consent can be revoked.
        let name = match state.registry.client(c.client_id.as_str()).await {
            Ok(Some(client)) => client.name.clone(),
            Ok(None) => Msg::RemovedApp {
                client: c.client_id.as_str().to_owned(),
            }
            .text(),
            Err(e) if e.is_unavailable() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(client_id = %c.client_id.as_str(), error = %e, "account page: client unreadable");
                c.client_id.as_str().to_owned()
            }
        };
        consents.push(ConsentView {
            client_id: c.client_id.as_str().to_owned(),
            client_name: name,
            scopes: c
                .scopes
                .iter()
                .map(|s| ScopeView {
                    name: s.clone(),
                    description: describe(s),
                })
                .collect(),
            granted: Time::at(c.updated_at),
        });
    }
    let mut ctx = Context::new();
    ctx.insert("username", &user.username);
    ctx.insert("sessions", &sessions);
    ctx.insert("totp", &totp);
    ctx.insert("mfa_required", &user.mfa_required);
    ctx.insert("recovery_unused", &unused);
    ctx.insert("recovery_total", &codes.len());
    ctx.insert("recovery_used", &used);
    ctx.insert("passkeys_enabled", &passkeys_enabled);
    ctx.insert("passkeys", &passkeys);
    ctx.insert("consents", &consents);
    ctx.insert("recent_minutes", &(super::RECENT_SIGN_IN / 60));
    ctx.insert("password_min_length", &state.settings.password_min_length);
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let t = Time::at(1_700_000_000);
        assert_eq!(t.text, "2023-11-14 22:13 UTC");
        assert_eq!(t.iso, "2023-11-14T22:13:20Z");
    }

    #[test]
    fn devices_are_named_from_the_user_agent() {
        assert_eq!(device(None), "Unknown device");
        assert_eq!(device(Some(" ")), "Unknown device");
        assert_eq!(
            device(Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
            )),
            "Firefox on Linux"
        );
        assert_eq!(
            device(Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")),
            "Edge on Windows"
        );
        assert_eq!(
            device(Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")),
            "Safari on iPhone"
        );
        assert_eq!(device(Some("curl/8.5.0")), "curl/8.5.0");
        assert_eq!(
            device(Some(
                "some-very-long-agent-string-without-any-known-words-in-it-at-all"
            )),
            "some-very-long-agent-string-without-any-\u{2026}"
        );
    }
}
