//! Second factors and authentication levels: TOTP secrets (sealed with a
//! subkey of the key-encryption key, the second exception to "secrets are
//! stored hashed"), recovery codes (keyed hashes, single use), the
//! operator's policies (`users.mfa_required`, `clients.require_acr`), and
//! what the account page shows of a session (`ip`, `user_agent`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000001_second_factors"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    MfaRequired,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequireAcr,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    UserId,
    SecretSealed,
    CreatedAt,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    CodeHash,
    UserId,
    CreatedAt,
    UsedAt,
}

const RECOVERY_USER_INDEX: &str = "idx_recovery_codes_user";

/// SQLite adds one column per `ALTER TABLE`.
async fn add_column(
    m: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    col: ColumnDef,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

async fn drop_column(
    m: &SchemaManager<'_>,
    table: impl IntoIden + 'static,
    col: impl IntoIden + 'static,
) -> Result<(), DbErr> {
    m.alter_table(Table::alter().table(table).drop_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_column(
            m,
            Users::Table,
            ColumnDef::new(Users::MfaRequired)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Clients::Table,
            ColumnDef::new(Clients::RequireAcr)
                .string_len(255)
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Sessions::Table,
            ColumnDef::new(Sessions::Ip)
                .string_len(64)
                .null()
                .to_owned(),
        )
        .await?;
        add_column(
            m,
            Sessions::Table,
            ColumnDef::new(Sessions::UserAgent)
                .string_len(255)
                .null()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TotpFactors::Table)
                .col(
                    ColumnDef::new(TotpFactors::UserId)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                // AES-256-GCM under a KEK subkey, the user id as associated data.
                .col(
                    ColumnDef::new(TotpFactors::SecretSealed)
                        .binary()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TotpFactors::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                // Null until the first code confirmed the enrolment.
                .col(
                    ColumnDef::new(TotpFactors::ConfirmedAt)
                        .big_integer()
                        .null(),
                )
                // The last time step accepted: a code is never accepted twice.
                .col(ColumnDef::new(TotpFactors::LastStep).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RecoveryCodes::Table)
                .col(
                    ColumnDef::new(RecoveryCodes::CodeHash)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(RecoveryCodes::UserId)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RecoveryCodes::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(RecoveryCodes::UsedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(RECOVERY_USER_INDEX)
                .table(RecoveryCodes::Table)
                .col(RecoveryCodes::UserId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(TotpFactors::Table).to_owned())
            .await?;
        drop_column(m, Sessions::Table, Sessions::UserAgent).await?;
        drop_column(m, Sessions::Table, Sessions::Ip).await?;
        drop_column(m, Clients::Table, Clients::RequireAcr).await?;
        drop_column(m, Users::Table, Users::MfaRequired).await
    }
}
