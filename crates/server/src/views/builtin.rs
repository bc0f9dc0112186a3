//! The built-in templates, stylesheet and scripts, compiled into the
//! binary from `templates/` so it runs from any directory.

/// Every template by its file name: what `templates_dir` may replace.
pub(super) const TEMPLATES: [(&str, &str); 14] = [
    ("base.html", include_str!("../../../../templates/base.html")),
    (
        "login.html",
        include_str!("../../../../templates/login.html"),
    ),
    (
        "consent.html",
        include_str!("../../../../templates/consent.html"),
    ),
    (
        "device.html",
        include_str!("../../../../templates/device.html"),
    ),
    (
        "error.html",
        include_str!("../../../../templates/error.html"),
    ),
    (
        "logout.html",
        include_str!("../../../../templates/logout.html"),
    ),
    (
        "form_post.html",
        include_str!("../../../../templates/form_post.html"),
    ),
    (
        "authorize_error.html",
        include_str!("../../../../templates/authorize_error.html"),
    ),
    (
        "second_factor.html",
        include_str!("../../../../templates/second_factor.html"),
    ),
    (
        "totp_enrol.html",
        include_str!("../../../../templates/totp_enrol.html"),
    ),
    (
        "recovery_codes.html",
        include_str!("../../../../templates/recovery_codes.html"),
    ),
    (
        "passkey.html",
        include_str!("../../../../templates/passkey.html"),
    ),
    (
        "account.html",
        include_str!("../../../../templates/account.html"),
    ),
    (
        "sign_in_again.html",
        include_str!("../../../../templates/sign_in_again.html"),
    ),
];

/// The stylesheet's file name: served at `/assets/gatehouse.css`, and
/// replaced by a file of this name in `templates_dir`.
pub const STYLESHEET_NAME: &str = "gatehouse.css";

/// The built-in stylesheet.
pub(super) const STYLESHEET: &str = include_str!("../../../../templates/gatehouse.css");

/// The inline scripts, each allowed by its hash on its own page only:
/// form_post's auto-submit, the passkey page's WebAuthn call, and the
/// sign-in page's passkey autofill (every other page runs no script at
/// all, and only the sign-in page may `fetch`, from its own origin). A
/// template replacing form_post or the passkey page must carry its script
/// byte for byte (checked at start-up).
pub(super) const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The passkey page's script (`templates/passkey.js`): the page inserts it
/// as `{{ script | safe }}`, so its hash is of exactly this text. It is not
/// replaceable: the Content-Security-Policy allows this text alone.
pub const PASSKEY_SCRIPT: &str = include_str!("../../../../templates/passkey.js");

/// The sign-in page's script (`templates/passkey_autofill.js`): where the
/// browser offers passkeys in the username field's autofill (WebAuthn
/// conditional mediation), it asks for a ceremony (`fetch`, the page's one
/// `connect-src 'self'`) and waits for the user to pick one. Not
/// replaceable either.
pub const AUTOFILL_SCRIPT: &str = include_str!("../../../../templates/passkey_autofill.js");

/// The script file's name, refused in `templates_dir`.
pub(super) const PASSKEY_SCRIPT_NAME: &str = "passkey.js";
