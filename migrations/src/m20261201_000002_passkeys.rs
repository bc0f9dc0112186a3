//! Passkeys (WebAuthn): each user's credentials, and the state of
//! ceremonies in progress. A ceremony's state is kept here, not in the
//! instance's memory, so any instance can finish a ceremony another began;
//! it is single use and lives five minutes. Its id is stored as a keyed
//! hash. A credential holds only public material (the public key and its
//! counter), so it is stored as it is.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000002_passkeys"
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    CredentialId,
    UserId,
    Name,
    Credential,
    CreatedAt,
    LastUsedAt,
    Counter,
    BackupEligible,
    BackupState,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    IdHash,
    Kind,
    UserId,
    State,
    CreatedAt,
    ExpiresAt,
}

const PASSKEYS_USER_INDEX: &str = "idx_passkeys_user";
const CEREMONIES_EXPIRES_INDEX: &str = "idx_webauthn_ceremonies_expires";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use Passkeys as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                // base64url of the credential id (at most 1023 bytes).
                .col(
                    ColumnDef::new(P::CredentialId)
                        .string_len(1400)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(P::UserId).string_len(255).not_null())
                .col(ColumnDef::new(P::Name).string_len(255).not_null())
                // The credential as webauthn-rs serialises it (public key, counter, flags).
                .col(ColumnDef::new(P::Credential).text().not_null())
                .col(ColumnDef::new(P::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(P::LastUsedAt).big_integer().null())
                .col(
                    ColumnDef::new(P::Counter)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .col(
                    ColumnDef::new(P::BackupEligible)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(P::BackupState)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(PASSKEYS_USER_INDEX)
                .table(P::Table)
                .col(P::UserId)
                .to_owned(),
        )
        .await?;
        use WebauthnCeremonies as W;
        m.create_table(
            Table::create()
                .table(W::Table)
                .col(
                    ColumnDef::new(W::IdHash)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                // register, authenticate (a known user) or discover (no username).
                .col(ColumnDef::new(W::Kind).string_len(32).not_null())
                .col(ColumnDef::new(W::UserId).string_len(255).null())
                .col(ColumnDef::new(W::State).text().not_null())
                .col(ColumnDef::new(W::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(W::ExpiresAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(CEREMONIES_EXPIRES_INDEX)
                .table(W::Table)
                .col(W::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebauthnCeremonies::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Passkeys::Table).to_owned())
            .await
    }
}
