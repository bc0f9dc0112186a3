//! sea-orm entities, one module per table. Private to this crate: the rest of
//! the workspace sees the domain types in `model`.
#![allow(clippy::enum_variant_names)]

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod users {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub username: String,
        pub email: Option<String>,
        pub email_verified: bool,
        pub name: Option<String>,
        pub password_hash: String,
        pub disabled: bool,
        pub created_at: i64,
        pub updated_at: i64,
        pub mfa_required: bool,
    }
    no_relations!();
}

pub mod clients {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub secret_hash: Option<String>,
        pub name: String,
        pub redirect_uris: String,
        pub post_logout_redirect_uris: String,
        pub grant_types: String,
        pub response_types: String,
        pub token_endpoint_auth_method: String,
        pub scopes: String,
        pub jwks: Option<String>,
        pub jwks_uri: Option<String>,
        pub id_token_signed_response_alg: String,
        pub access_token_lifetime: Option<i64>,
        pub refresh_token_lifetime: Option<i64>,
        pub backchannel_logout_uri: Option<String>,
        pub registration_token_hash: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub client_secret_sealed: Option<Vec<u8>>,
        pub token_endpoint_auth_signing_alg: Option<String>,
        pub require_pkce: bool,
        pub dpop_bound_access_tokens: bool,
        pub registration_policy: Option<String>,
        pub legacy_assertion_audience: bool,
        pub require_acr: Option<String>,
        pub require_pushed_authorization_requests: bool,
    }
    no_relations!();
}

pub mod resource_servers {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "resource_servers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub audience: String,
        pub encryption_jwk: String,
        pub signing_alg: String,
        pub token_format: String,
        pub access_token_lifetime: Option<i64>,
        pub scopes: String,
        pub created_at: i64,
        pub clients: String,
        pub allow_exchange_from: String,
    }
    no_relations!();
}

pub mod keys {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        pub r#use: String,
        pub alg: String,
        pub state: String,
        pub sealed_private_key: Vec<u8>,
        pub public_jwk: String,
        pub created_at: i64,
        pub activated_at: Option<i64>,
        pub retired_at: Option<i64>,
        pub revoked_at: Option<i64>,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod epochs {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "epochs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: i64,
    }
    no_relations!();
}

pub mod sessions {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub sid: String,
        pub user_id: String,
        pub auth_time: i64,
        pub amr: String,
        pub acr: Option<String>,
        pub created_at: i64,
        pub last_seen_at: i64,
        pub expires_at: i64,
        pub ip: Option<String>,
        pub user_agent: Option<String>,
    }
    no_relations!();
}

pub mod authorization_codes {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub client_id: String,
        pub user_id: String,
        pub redirect_uri: String,
        pub scope: String,
        pub nonce: Option<String>,
        pub code_challenge: Option<String>,
        pub resource: Option<String>,
        pub auth_time: i64,
        pub sid: Option<String>,
        pub acr: Option<String>,
        pub amr: String,
        pub family_id: String,
        pub access_token_jti: Option<String>,
        pub access_token_expires_at: Option<i64>,
        pub created_at: i64,
        pub expires_at: i64,
        pub consumed_at: Option<i64>,
        pub dpop_jkt: Option<String>,
    }
    no_relations!();
}

pub mod authorization_transactions {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "authorization_transactions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub browser_hash: String,
        pub request: String,
        pub session_id_hash: Option<String>,
        pub auth_time: Option<i64>,
        pub consented_at: Option<i64>,
        pub consent_session_hash: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
        pub consumed_at: Option<i64>,
    }
    no_relations!();
}

pub mod pushed_authorization_requests {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pushed_authorization_requests")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub client_id: String,
        pub request: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub redeemed_at: Option<i64>,
    }
    no_relations!();
}

pub mod device_authorizations {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "device_authorizations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub device_code_hash: String,
        pub user_code_hash: String,
        pub client_id: String,
        pub scope: String,
        pub resource: Option<String>,
        pub interval: i64,
        pub last_polled_at: Option<i64>,
        pub status: String,
        pub user_id: Option<String>,
        pub auth_time: Option<i64>,
        pub acr: Option<String>,
        pub amr: Option<String>,
        pub family_id: String,
        pub access_token_jti: Option<String>,
        pub access_token_expires_at: Option<i64>,
        pub created_at: i64,
        pub expires_at: i64,
        pub decided_at: Option<i64>,
        pub consumed_at: Option<i64>,
    }
    no_relations!();
}

pub mod consents {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "consents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        pub scopes: String,
        pub created_at: i64,
        pub updated_at: i64,
    }
    no_relations!();
}

pub mod refresh_tokens {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub family_id: String,
        pub client_id: String,
        pub user_id: String,
        pub scope: String,
        pub resource: Option<String>,
        pub auth_time: i64,
        pub sid: Option<String>,
        pub acr: Option<String>,
        pub amr: String,
        pub successor_hash: Option<String>,
        pub created_at: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub revoked_at: Option<i64>,
        pub dpop_jkt: Option<String>,
    }
    no_relations!();
}

pub mod revoked_tokens {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "revoked_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub jti: String,
        pub expires_at: i64,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod token_status {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "token_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub idx: i64,
        pub list_id: i64,
        pub subject: Option<String>,
        pub family: Option<String>,
        pub expires_at: i64,
        pub revoked: bool,
    }
    no_relations!();
}

pub mod registration_tokens {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "registration_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub expires_at: Option<i64>,
        pub uses_left: Option<i64>,
        pub created_at: i64,
        pub policy: Option<String>,
    }
    no_relations!();
}

pub mod opaque_tokens {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "opaque_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub jti: String,
        pub client_id: String,
        pub user_id: Option<String>,
        pub scope: String,
        pub audience: String,
        pub auth_time: Option<i64>,
        pub created_at: i64,
        pub expires_at: i64,
        pub revoked_at: Option<i64>,
        pub family_id: Option<String>,
        pub dpop_jkt: Option<String>,
        pub act: Option<String>,
    }
    no_relations!();
}

pub mod session_clients {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "session_clients")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub sid: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod totp_factors {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "totp_factors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub secret_sealed: Vec<u8>,
        pub created_at: i64,
        pub confirmed_at: Option<i64>,
        pub last_step: Option<i64>,
        pub session_hash: Option<String>,
    }
    no_relations!();
}

pub mod factor_failures {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "factor_failures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub failures: i32,
        pub last_failed_at: i64,
    }
    no_relations!();
}

pub mod recovery_codes {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code_hash: String,
        pub user_id: String,
        pub created_at: i64,
        pub used_at: Option<i64>,
    }
    no_relations!();
}

pub mod passkeys {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "passkeys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub credential_id: String,
        pub user_id: String,
        pub name: String,
        pub credential: String,
        pub created_at: i64,
        pub last_used_at: Option<i64>,
        pub counter: i64,
        pub backup_eligible: bool,
        pub backup_state: bool,
    }
    no_relations!();
}

pub mod webauthn_ceremonies {
    use sea_orm::entity::prelude::*;
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "webauthn_ceremonies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub kind: String,
        pub user_id: Option<String>,
        pub state: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub session_hash: Option<String>,
    }
    no_relations!();
}
