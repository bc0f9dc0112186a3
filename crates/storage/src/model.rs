//! Domain types the stores take and return. Plain data: no sea-orm, no HTTP.

use gatehouse_keys::Alg;
use gatehouse_protocol::{Acr, AuthMethod, ClientId, GrantType, Jkt, TokenFormat, UserId};
use serde::{Deserialize, Serialize};

/// A person who signs in at Gatehouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    /// The stable subject identifier (`sub`).
    pub id: UserId,
    /// Normalized (trimmed, lowercase) and unique.
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    #[serde(skip)]
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The operator requires a second factor (`users mfa require`).
    pub mfa_required: bool,
}

/// A registered client application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: ClientId,
    /// Keyed hash of the client secret; `None` for public and private_key_jwt clients.
    #[serde(skip_serializing)]
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types this client may use. A stored name this release does
    /// not know is left out when the row is read (a newer release wrote
    /// it): the client simply cannot use that grant here.
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    /// API scopes (of resource servers) the client may request, beyond the
    /// OIDC standard ones, which every client may request. Empty: no API
    /// scope at all.
    pub scopes: Vec<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: Alg,
    pub access_token_lifetime: Option<i64>,
    pub refresh_token_lifetime: Option<i64>,
    pub backchannel_logout_uri: Option<String>,
    #[serde(skip_serializing)]
    pub registration_token_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// client_secret_jwt only: the secret itself, sealed with the
    /// key-encryption key and bound to the client id (the HMAC of an
    /// assertion cannot be checked against a hash).
    #[serde(default, skip_serializing)]
    pub client_secret_sealed: Option<Vec<u8>>,
    /// The one algorithm the client's JWT assertions must use, if it
    /// registered one (OIDC Registration `token_endpoint_auth_signing_alg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Every authorization request must carry a PKCE challenge, even an
    /// OpenID request with a nonce from a confidential client.
    #[serde(default)]
    pub require_pkce: bool,
    /// Dynamically registered clients only: what the initial access token
    /// allowed, which an RFC 7592 update cannot exceed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_policy: Option<RegistrationPolicy>,
    /// Also accept the token endpoint URL as a client assertion's `aud`
    /// (weaker than the issuer alone; for libraries that send it).
    #[serde(default)]
    pub legacy_assertion_audience: bool,
    /// The operator requires this authentication level for every sign-in
    /// to this client (`--require-acr`; no registration counterpart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_acr: Option<Acr>,
    /// Every access token of this client must be DPoP-bound: a token
    /// request without a proof is refused (RFC 9449 5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// The client may start an authorization only with a pushed request
    /// (RFC 9126 6 `require_pushed_authorization_requests`).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
}

impl Client {
    /// Registered through the registration endpoint (RFC 7591) rather than
    /// by an administrator: only such clients hold a registration access
    /// token. Their redirect URIs are not vouched for by anyone.
    pub fn dynamically_registered(&self) -> bool {
        self.registration_token_hash.is_some()
    }
}

/// What an initial access token lets a registrant ask for (RFC 7591 3), and
/// what the client's later RFC 7592 updates stay within.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationPolicy {
    /// Grant types the client may register (names this release does not
    /// know are left out when read).
    #[serde(deserialize_with = "crate::clients::known_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// API scopes the client may register; the OIDC ones are always allowed.
    pub scopes: Vec<String>,
}

impl Default for RegistrationPolicy {
    /// Without a policy: the code flow with refresh tokens, OIDC scopes only.
    fn default() -> Self {
        RegistrationPolicy {
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Vec::new(),
        }
    }
}

/// An API that accepts Gatehouse access tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceServer {
    /// The audience (`aud`) and RFC 8707 resource indicator.
    pub audience: String,
    /// Public JWK (JSON text) its access tokens are encrypted to.
    pub encryption_jwk: String,
    pub signing_alg: Alg,
    pub token_format: TokenFormat,
    pub access_token_lifetime: Option<i64>,
    /// Scopes this API defines.
    pub scopes: Vec<String>,
    pub created_at: i64,
    /// Client ids linked to this API (the API itself calling Gatehouse):
    /// they may introspect tokens issued for this audience.
    #[serde(default)]
    pub clients: Vec<ClientId>,
    /// Client ids that may exchange a token for one addressed to this API
    /// (RFC 8693 token exchange); empty: none.
    #[serde(default)]
    pub allow_exchange_from: Vec<ClientId>,
}

/// Keys as stored: the key crate defines them, so its `KeyStore` trait
/// and this crate's implementation of it speak the same types.
pub use gatehouse_keys::{KeyRecord, KeyState};

/// A login session at Gatehouse (the SSO anchor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    /// Public session id, put in ID tokens as `sid`.
    pub sid: String,
    pub user_id: UserId,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    /// Where the session was started from, for the account page.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A user's TOTP factor (RFC 6238). The secret is sealed by the caller;
/// the store never sees it in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpFactor {
    pub user_id: UserId,
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    /// `None` while the enrolment waits for its first code.
    pub confirmed_at: Option<i64>,
    /// The last time step accepted (never accepted again).
    pub last_step: Option<i64>,
}

/// A passkey of a user. `credential` is webauthn-rs's serialised form
/// (public material only); the other fields are what the account page and
/// the audit need without parsing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// base64url of the credential id.
    pub credential_id: String,
    pub user_id: UserId,
    pub name: String,
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub counter: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// A WebAuthn ceremony in progress: its kind, user (none while
/// discovering who signs in) and webauthn-rs's serialised state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceremony {
    pub kind: String,
    pub user_id: Option<UserId>,
    pub state: String,
    /// The keyed hash of the session that began it (none for a sign-in,
    /// which has no session yet).
    pub session_hash: Option<String>,
}

/// The second factors a user has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Factors {
    /// A confirmed TOTP factor.
    pub totp: bool,
    /// At least one passkey.
    pub passkey: bool,
}

impl Factors {
    pub fn any(self) -> bool {
        self.totp || self.passkey
    }

    /// The highest level they reach after a password (a passkey always
    /// verifies the user: registration requires it).
    pub fn capable(self) -> Acr {
        if self.passkey {
            Acr::Phr
        } else if self.totp {
            Acr::Mfa
        } else {
            Acr::Pwd
        }
    }
}

/// One recovery code of a user (its keyed hash is not returned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryCode {
    pub created_at: i64,
    pub used_at: Option<i64>,
}

/// The scopes a user granted a client, as the account page lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub created_at: i64,
    /// When the scopes were last granted (a later consent replaces them).
    pub updated_at: i64,
}

/// An authorization transaction: a checked authorization request kept
/// while the browser signs in and consents. Its id and browser binding are
/// keyed hashes; the request is JSON the server reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationTx {
    pub id_hash: String,
    pub browser_hash: String,
    pub request: String,
    /// The sign-in performed during this transaction, if any.
    pub sign_in: Option<TxSignIn>,
    /// When the user approved on the consent page during it.
    pub consented_at: Option<i64>,
    /// The session (its id hash) in which that approval was given: the
    /// approval holds for that session's user only.
    pub consent_session_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

/// A sign-in performed during an authorization transaction: the session it
/// started (a keyed hash the server derives from it) and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxSignIn {
    pub session_id_hash: String,
    pub auth_time: i64,
}

/// What looking up an authorization transaction from a browser found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxLookup {
    /// Live: not expired, not consumed.
    Live(AuthorizationTx),
    /// Already consumed (a code was issued, or the user denied).
    Consumed,
    /// No such transaction for this browser, or expired.
    Unknown,
}

/// An authorization request a client pushed (RFC 9126): the checked
/// request as JSON, found by the keyed hash of its `request_uri`'s random
/// part, redeemed once by the same client before it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRequest {
    pub id_hash: String,
    pub client_id: ClientId,
    pub request: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
}

/// What presenting a pushed request's `request_uri` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redemption {
    /// Redeemed now, by this call alone.
    Redeemed(PushedRequest),
    /// Pushed by another client (left as it was).
    OtherClient,
    /// Redeemed before.
    Used,
    /// Expired, not redeemed.
    Expired,
    /// No such request (never pushed, or expired and deleted).
    Unknown,
}

/// What an authorization code stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub sid: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// The grant this code starts; refresh tokens descend from it.
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The DPoP key the code is bound to (`dpop_jkt`, RFC 9449 10): the
    /// token request must carry a proof of that key.
    pub dpop_jkt: Option<Jkt>,
}

/// An opaque refresh token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: String,
    pub resource: Option<String>,
    pub auth_time: i64,
    pub sid: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub successor_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// A public client's DPoP key: the token is refused without a proof of
    /// that key (RFC 9449 5); successors inherit it.
    pub dpop_jkt: Option<Jkt>,
}

/// The outcome of redeeming an authorization code.
// The size difference between variants is fine: one value per token
// request, returned and matched at once, never stored in bulk. Boxing the
// code would only change the public API for no measurable gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First and only redemption.
    Redeemed(AuthCode),
    /// The code had been redeemed before: a replay. Carries what the first
    /// redemption issued so it can be revoked.
    Replayed {
        family_id: String,
        access_token_jti: Option<String>,
        access_token_expires_at: Option<i64>,
    },
    /// No such code, or it expired.
    Invalid,
}

/// An authorization code as found, before anything is consumed: the
/// grant checks the code's bindings (client, redirect URI, PKCE) on it
/// first, so a request that fails them neither burns the code nor, for a
/// used one, revokes its grant.
#[allow(clippy::large_enum_variant)] // one value per token request, matched at once
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeLookup {
    /// Not redeemed yet and not expired.
    Live(AuthCode),
    /// Redeemed before (expired or not): a second redemption is a replay.
    Used(AuthCode),
    /// Never redeemed, and its lifetime is over.
    Expired,
    /// No such code (never issued, or already pruned).
    Unknown,
}

/// An opaque (reference) access token, for resource servers that chose
/// stateful tokens. Stored by hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpaqueToken {
    pub token_hash: String,
    pub jti: String,
    pub client_id: ClientId,
    /// `None` for client_credentials tokens.
    pub user_id: Option<UserId>,
    pub scope: String,
    pub audience: String,
    pub auth_time: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The grant (refresh family) the token descends from; `None` for
    /// client_credentials tokens. Revoking the grant revokes the token.
    pub family_id: Option<String>,
    /// The DPoP key the token is bound to (`cnf.jkt` at introspection).
    pub dpop_jkt: Option<Jkt>,
    /// An exchanged token's delegation chain (RFC 8693 4.1 `act`), as the
    /// JSON of the claim; `None` for a token that was not exchanged.
    pub act: Option<String>,
}

/// What issuing one access token leaves in the database. A grant that
/// writes anyway (a code redemption, a refresh rotation) writes it in the
/// same transaction as its own write: all or nothing, so a failure never
/// leaves a spent code or refresh token without the tokens it paid for.
#[allow(clippy::large_enum_variant)] // one value per token request
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRecord {
    /// A user-bound JWE token's place in the status list (its grant or its
    /// subject can then be revoked).
    Status(crate::StatusEntry),
    /// An opaque token, looked up by hash on every use.
    Opaque(OpaqueToken),
}

/// The rows a code redemption writes with the redemption itself, in one
/// transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantWrites {
    /// The first refresh token of the grant (`offline_access`).
    pub refresh_token: Option<RefreshToken>,
    /// The record of the access token issued (none for a client-credentials
    /// JWE token, which needs no row).
    pub access_token: Option<TokenRecord>,
}

/// A device authorization (RFC 8628 3.1, 3.2), as `POST /device_authorization`
/// stored it: found by the keyed hash of its device code (the token
/// endpoint) or of its user code in normal form (`/device`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: ClientId,
    pub scope: String,
    pub resource: Option<String>,
    /// Seconds the client must wait between polls.
    pub interval: i64,
    /// The grant the tokens will belong to (refresh family, revocation).
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The sign-in that approved a device authorization at `/device`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceApproval {
    pub user_id: UserId,
    pub auth_time: i64,
    pub acr: Option<String>,
    pub amr: Vec<String>,
}

/// What the user decided at `/device`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceDecision {
    Approve(DeviceApproval),
    Deny,
}

/// Whether deciding a device authorization (with its transaction) won.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceDecided {
    /// Both written.
    Decided,
    /// The transaction had ended or expired: nothing written.
    TxLost,
    /// The device authorization was decided before, or expired: nothing
    /// written.
    DeviceLost,
}

/// What one poll of the token endpoint found (RFC 8628 3.5), after
/// recording the poll.
#[allow(clippy::large_enum_variant)] // one value per token request, matched at once
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code (never issued, or expired and pruned).
    Unknown,
    /// Issued to another client (nothing recorded).
    OtherClient,
    /// Its lifetime is over.
    Expired,
    /// Polled sooner than the interval allows: the interval is now this.
    SlowDown { interval: i64 },
    /// The user has not decided yet.
    Pending,
    /// The user denied it.
    Denied,
    /// Approved and not redeemed: redeem it with
    /// [`crate::Store::redeem_device_code`].
    Approved(DeviceAuthorization, DeviceApproval),
    /// Redeemed before: a second redemption is a replay.
    Replayed {
        family_id: String,
        access_token_jti: Option<String>,
        access_token_expires_at: Option<i64>,
    },
}
