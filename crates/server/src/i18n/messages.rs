//! The messages the server puts on pages (errors, notices, texts a handler
//! chooses), as a type: each is a catalogue key with its arguments as
//! typed fields named like the placeholders they fill. A handler says
//! `Msg::TooManyCodes { count: 30 }`, never a sentence, so every message
//! has a translation and a wrong argument does not compile.

use super::{current, translate, Arg, Lang};

/// Declares [`Msg`]: each variant, its fields and its catalogue key.
macro_rules! messages {
    ($( $(#[$doc:meta])* $name:ident $({ $($field:ident : $ty:ty),* $(,)? })? => $key:literal, )*) => {
        /// A message shown on a page.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Msg {
            $( $(#[$doc])* $name $({ $($field: $ty),* })?, )*
        }

        impl Msg {
            /// Every message's key and the names of its arguments (tests).
            #[cfg(test)]
            pub(super) const ALL: &'static [(&'static str, &'static [&'static str])] = &[
                $( ($key, &[ $($( stringify!($field) ),*)? ]), )*
            ];

            /// Its catalogue key.
            pub fn key(&self) -> &'static str {
                match self {
                    $( Msg::$name { .. } => $key, )*
                }
            }

            /// Its arguments, by placeholder name.
            pub fn args(&self) -> Vec<(&'static str, Arg)> {
                match self {
                    $( Msg::$name $({ $($field),* })? => vec![
                        $($( (stringify!($field), Arg::from($field)) ),*)?
                    ], )*
                }
            }
        }
    };
}

messages! {
    // Error pages.
    ServerTitle => "error.server_title",
    RequestTitle => "error.request_title",
    Unavailable => "error.unavailable",
    FormNotSent => "error.form",
    /// The CSRF check failed.
    FormExpired => "error.csrf",
    RedirectUriInvalid => "error.redirect_uri_invalid",
    RedirectTargetInvalid => "error.redirect_target_invalid",

    // The authorization request and its transaction.
    NotFormEncoded => "authorize.not_form_encoded",
    RepeatedClientOrRedirect => "authorize.repeated_client",
    NoClient => "authorize.no_client",
    UnknownClient => "authorize.unknown_client",
    NoRedirectUri => "authorize.no_redirect_uri",
    UnregisteredRedirectUri => "authorize.unregistered_redirect_uri",
    ClientGone => "authorize.client_gone",
    /// `reason`: what the registration no longer allows.
    RegistrationChanged { reason: String } => "authorize.registration_changed",
    TxUnknown => "authorize.tx_unknown",
    TxConsumed => "authorize.tx_consumed",
    RequestUriUnknown => "authorize.request_uri_unknown",
    RequestUriExpired => "authorize.request_uri_expired",
    RequestUriUsed => "authorize.request_uri_used",
    RequestUriOtherClient => "authorize.request_uri_other_client",
    /// `reason`: what was wrong with the object (English, as the OAuth
    /// error description says it).
    RequestObjectRefused { reason: String } => "authorize.request_object_refused",

    // The device sign-in page (RFC 8628).
    DeviceCodeWrong => "device.wrong",
    DeviceTooManyCodes => "device.too_many",
    DeviceGone => "device.gone",
    /// `reason`: the error description (English).
    DeviceRefused { reason: String } => "device.refused",

    // Signing in.
    SignInFormNotSent => "login.form",
    TooManyAttempts { count: i64 } => "login.too_many",
    Busy => "login.busy_short",
    IncorrectCredentials => "login.incorrect",

    // Consent, and what scopes allow (the consent and account pages).
    ConsentFormNotSent => "consent.form",
    ScopeOpenid => "scope.openid",
    ScopeProfile => "scope.profile",
    ScopeEmail => "scope.email",
    ScopeOfflineAccess => "scope.offline_access",
    ScopeApi { scope: String } => "scope.api",

    // Signing out.
    LogoutHintSignature => "logout.hint_signature",
    LogoutHintNotIdToken => "logout.hint_not_id_token",
    LogoutHintOtherIssuer => "logout.hint_other_issuer",
    LogoutHintIncomplete => "logout.hint_incomplete",
    LogoutClientNotAudience => "logout.client_not_audience",
    LogoutRedirectInvalid => "logout.redirect_invalid",
    LogoutMalformed => "logout.malformed",
    LogoutFormNotSent => "logout.form",

    // Second factors.
    TooManyCodes { count: i64 } => "second_factor.too_many",
    WrongCode => "second_factor.wrong_code",
    WrongEnrolmentCode => "second_factor.wrong_enrolment_code",
    PasskeyUnusable => "second_factor.passkey_unusable",
    PasskeyNeeded => "second_factor.passkey_needed",

    // The password form.
    EnterCurrentPassword => "password.enter_current",
    PasswordTooShort { count: i64 } => "password.too_short",
    PasswordTooLong { count: i64 } => "password.too_long",
    PasswordCommon => "password.common",
    PasswordPersonal => "password.personal",
    PasswordsDiffer => "password.not_same",
    WrongCurrentPassword => "password.wrong_current",
    PasswordBusy => "login.busy",

    // The account page.
    NoSessionNamed => "account.no_session",
    NoAppNamed => "account.no_app",
    RemovedApp { client: String } => "account.removed_app",
    UnknownDevice => "account.unknown_device",
    /// "Firefox on Linux".
    Device { browser: String, os: String } => "account.device",
    DefaultPasskeyName => "passkey.default_name",
    SessionEnded => "account.done.session_ended",
    TotpRemoved => "account.done.totp_removed",
    TotpAlreadySetUp => "account.done.totp_exists",
    PasswordChanged => "account.done.password_changed",
    ConsentRevoked => "account.done.consent_revoked",
    PasskeyAdded => "account.done.passkey_added",
    PasskeyRemoved => "account.done.passkey_removed",

    // Passkeys.
    PasskeySecondTitle => "passkey.second_title",
    PasskeySecondLead => "passkey.second_lead",
    PasskeySignInTitle => "passkey.signin_title",
    PasskeySignInLead => "passkey.signin_lead",
    PasskeyRegisterTitle => "passkey.register_title",
    PasskeyRegisterLead => "passkey.register_lead",
    PasskeyUse => "passkey.use",
    PasskeyCreate => "passkey.create",
    NoPasskey => "passkey.none",
    TooManyPasskeyStarts => "passkey.too_many_starts",
    NoSuchPasskey => "passkey.no_such",
    PasskeyDisabled => "passkey.error.disabled",
    PasskeyExpired => "passkey.error.expired",
    PasskeyMalformed => "passkey.error.malformed",
    PasskeyUnknown => "passkey.error.unknown",
    PasskeyCounter => "passkey.error.counter",
    PasskeyRefused => "passkey.error.refused",
    PasskeyDuplicate => "passkey.error.duplicate",
    PasskeyTooMany { count: i64 } => "passkey.error.too_many",
}

impl Msg {
    /// The message in the language of the request being answered.
    pub fn text(&self) -> String {
        self.in_lang(current())
    }

    /// The message in `lang`.
    pub fn in_lang(&self, lang: Lang) -> String {
        translate(lang, self.key(), &self.args())
    }
}

/// In English: what logs and `Display` of errors show.
impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.in_lang(Lang::En))
    }
}
