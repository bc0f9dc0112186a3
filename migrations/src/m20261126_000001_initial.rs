//! The whole data model, created up front so later features add behaviour,
//! not schema churn.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000001_initial"
    }
}

fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().null().to_owned()
}
fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().not_null().to_owned()
}
fn ts_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).big_integer().null().to_owned()
}
fn flag(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .boolean()
        .not_null()
        .default(false)
        .to_owned()
}
fn pk_text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .string_len(255)
        .not_null()
        .primary_key()
        .to_owned()
}
fn key_text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(255).not_null().to_owned()
}
fn key_text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(255).null().to_owned()
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    EmailVerified,
    Name,
    PasswordHash,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    SecretHash,
    Name,
    RedirectUris,
    PostLogoutRedirectUris,
    GrantTypes,
    ResponseTypes,
    TokenEndpointAuthMethod,
    Scopes,
    Jwks,
    JwksUri,
    IdTokenSignedResponseAlg,
    AccessTokenLifetime,
    RefreshTokenLifetime,
    BackchannelLogoutUri,
    RegistrationTokenHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ResourceServers {
    Table,
    Audience,
    EncryptionJwk,
    SigningAlg,
    TokenFormat,
    AccessTokenLifetime,
    Scopes,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Keys {
    Table,
    Kid,
    Use,
    Alg,
    State,
    SealedPrivateKey,
    PublicJwk,
    CreatedAt,
    ActivatedAt,
    RetiredAt,
    RevokedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Epochs {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    IdHash,
    Sid,
    UserId,
    AuthTime,
    Amr,
    Acr,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SessionClients {
    Table,
    Sid,
    ClientId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    UserId,
    RedirectUri,
    Scope,
    Nonce,
    CodeChallenge,
    Resource,
    AuthTime,
    Sid,
    Acr,
    Amr,
    FamilyId,
    AccessTokenJti,
    AccessTokenExpiresAt,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scopes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    ClientId,
    UserId,
    Scope,
    Resource,
    AuthTime,
    Sid,
    Acr,
    Amr,
    SuccessorHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum OpaqueTokens {
    Table,
    TokenHash,
    Jti,
    ClientId,
    UserId,
    Scope,
    Audience,
    AuthTime,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    TokenHash,
    ExpiresAt,
    UsesLeft,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(pk_text(Users::Id))
                .col(key_text(Users::Username).unique_key())
                .col(text_null(Users::Email))
                .col(flag(Users::EmailVerified))
                .col(text_null(Users::Name))
                .col(text(Users::PasswordHash))
                .col(flag(Users::Disabled))
                .col(ts(Users::CreatedAt))
                .col(ts(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Clients::Table)
                .col(pk_text(Clients::Id))
                .col(text_null(Clients::SecretHash))
                .col(text(Clients::Name))
                .col(text(Clients::RedirectUris))
                .col(text(Clients::PostLogoutRedirectUris))
                .col(text(Clients::GrantTypes))
                .col(text(Clients::ResponseTypes))
                .col(text(Clients::TokenEndpointAuthMethod))
                .col(text(Clients::Scopes))
                .col(text_null(Clients::Jwks))
                .col(text_null(Clients::JwksUri))
                .col(text(Clients::IdTokenSignedResponseAlg))
                .col(ts_null(Clients::AccessTokenLifetime))
                .col(ts_null(Clients::RefreshTokenLifetime))
                .col(text_null(Clients::BackchannelLogoutUri))
                .col(text_null(Clients::RegistrationTokenHash))
                .col(ts(Clients::CreatedAt))
                .col(ts(Clients::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ResourceServers::Table)
                .col(pk_text(ResourceServers::Audience))
                .col(text(ResourceServers::EncryptionJwk))
                .col(text(ResourceServers::SigningAlg))
                .col(text(ResourceServers::TokenFormat))
                .col(ts_null(ResourceServers::AccessTokenLifetime))
                .col(text(ResourceServers::Scopes))
                .col(ts(ResourceServers::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Keys::Table)
                .col(pk_text(Keys::Kid))
                .col(key_text(Keys::Use))
                .col(key_text(Keys::Alg))
                .col(key_text(Keys::State))
                .col(ColumnDef::new(Keys::SealedPrivateKey).binary().not_null())
                .col(text(Keys::PublicJwk))
                .col(ts(Keys::CreatedAt))
                .col(ts_null(Keys::ActivatedAt))
                .col(ts_null(Keys::RetiredAt))
                .col(ts_null(Keys::RevokedAt))
                .col(ts(Keys::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_keys_use_alg_state")
                .table(Keys::Table)
                .col(Keys::Use)
                .col(Keys::Alg)
                .col(Keys::State)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Epochs::Table)
                .col(pk_text(Epochs::Name))
                .col(
                    ColumnDef::new(Epochs::Value)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await?;
        let seed = Query::insert()
            .into_table(Epochs::Table)
            .columns([Epochs::Name, Epochs::Value])
            .values_panic(["keys".into(), 0i64.into()])
            .values_panic(["clients".into(), 0i64.into()])
            .values_panic(["resources".into(), 0i64.into()])
            .to_owned();
        m.exec_stmt(seed).await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(pk_text(Sessions::IdHash))
                .col(key_text(Sessions::Sid).unique_key())
                .col(key_text(Sessions::UserId))
                .col(ts(Sessions::AuthTime))
                .col(text(Sessions::Amr))
                .col(text_null(Sessions::Acr))
                .col(ts(Sessions::CreatedAt))
                .col(ts(Sessions::LastSeenAt))
                .col(ts(Sessions::ExpiresAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_sessions_user")
                .table(Sessions::Table)
                .col(Sessions::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SessionClients::Table)
                .col(key_text(SessionClients::Sid))
                .col(key_text(SessionClients::ClientId))
                .col(ts(SessionClients::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(SessionClients::Sid)
                        .col(SessionClients::ClientId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuthorizationCodes::Table)
                .col(pk_text(AuthorizationCodes::CodeHash))
                .col(key_text(AuthorizationCodes::ClientId))
                .col(key_text(AuthorizationCodes::UserId))
                .col(text(AuthorizationCodes::RedirectUri))
                .col(text(AuthorizationCodes::Scope))
                .col(text_null(AuthorizationCodes::Nonce))
                .col(text_null(AuthorizationCodes::CodeChallenge))
                .col(text_null(AuthorizationCodes::Resource))
                .col(ts(AuthorizationCodes::AuthTime))
                .col(key_text_null(AuthorizationCodes::Sid))
                .col(text_null(AuthorizationCodes::Acr))
                .col(text(AuthorizationCodes::Amr))
                .col(key_text(AuthorizationCodes::FamilyId))
                .col(key_text_null(AuthorizationCodes::AccessTokenJti))
                .col(ts_null(AuthorizationCodes::AccessTokenExpiresAt))
                .col(ts(AuthorizationCodes::CreatedAt))
                .col(ts(AuthorizationCodes::ExpiresAt))
                .col(ts_null(AuthorizationCodes::ConsumedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Consents::Table)
                .col(key_text(Consents::UserId))
                .col(key_text(Consents::ClientId))
                .col(text(Consents::Scopes))
                .col(ts(Consents::CreatedAt))
                .col(ts(Consents::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(Consents::UserId)
                        .col(Consents::ClientId),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(pk_text(RefreshTokens::TokenHash))
                .col(key_text(RefreshTokens::FamilyId))
                .col(key_text(RefreshTokens::ClientId))
                .col(key_text(RefreshTokens::UserId))
                .col(text(RefreshTokens::Scope))
                .col(text_null(RefreshTokens::Resource))
                .col(ts(RefreshTokens::AuthTime))
                .col(key_text_null(RefreshTokens::Sid))
                .col(text_null(RefreshTokens::Acr))
                .col(text(RefreshTokens::Amr))
                .col(key_text_null(RefreshTokens::SuccessorHash))
                .col(ts(RefreshTokens::CreatedAt))
                .col(ts(RefreshTokens::ExpiresAt))
                .col(ts_null(RefreshTokens::UsedAt))
                .col(ts_null(RefreshTokens::RevokedAt))
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_refresh_family", RefreshTokens::FamilyId),
            ("idx_refresh_user", RefreshTokens::UserId),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(RefreshTokens::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }

        m.create_table(
            Table::create()
                .table(OpaqueTokens::Table)
                .col(pk_text(OpaqueTokens::TokenHash))
                .col(key_text(OpaqueTokens::Jti).unique_key())
                .col(key_text(OpaqueTokens::ClientId))
                .col(key_text_null(OpaqueTokens::UserId))
                .col(text(OpaqueTokens::Scope))
                .col(text(OpaqueTokens::Audience))
                .col(ts_null(OpaqueTokens::AuthTime))
                .col(ts(OpaqueTokens::CreatedAt))
                .col(ts(OpaqueTokens::ExpiresAt))
                .col(ts_null(OpaqueTokens::RevokedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RevokedTokens::Table)
                .col(pk_text(RevokedTokens::Jti))
                .col(ts(RevokedTokens::ExpiresAt))
                .col(ts(RevokedTokens::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(RegistrationTokens::Table)
                .col(pk_text(RegistrationTokens::TokenHash))
                .col(ts_null(RegistrationTokens::ExpiresAt))
                .col(
                    ColumnDef::new(RegistrationTokens::UsesLeft)
                        .big_integer()
                        .null(),
                )
                .col(ts(RegistrationTokens::CreatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            RegistrationTokens::Table.into_iden(),
            RevokedTokens::Table.into_iden(),
            OpaqueTokens::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Consents::Table.into_iden(),
            AuthorizationCodes::Table.into_iden(),
            SessionClients::Table.into_iden(),
            Sessions::Table.into_iden(),
            Epochs::Table.into_iden(),
            Keys::Table.into_iden(),
            ResourceServers::Table.into_iden(),
            Clients::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
