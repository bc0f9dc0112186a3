//! The device authorization grant (RFC 8628): one row per device
//! authorization, from `POST /device_authorization` until it expires. The
//! device code and the user code are stored as keyed hashes (the user code
//! in its normal form: upper case, no dash), never as values. The row is
//! decided once at `/device` (approved, with the facts of the approving
//! sign-in, or denied) and redeemed once at the token endpoint; polling
//! writes `last_polled_at` and, when too fast, a longer `interval`.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000001_device_authorizations"
    }
}

#[derive(DeriveIden)]
enum DeviceAuthorizations {
    Table,
    DeviceCodeHash,
    UserCodeHash,
    ClientId,
    Scope,
    Resource,
    Interval,
    LastPolledAt,
    Status,
    UserId,
    AuthTime,
    Acr,
    Amr,
    FamilyId,
    AccessTokenJti,
    AccessTokenExpiresAt,
    CreatedAt,
    ExpiresAt,
    DecidedAt,
    ConsumedAt,
}

const USER_CODE_INDEX: &str = "idx_device_authorizations_user_code";
const EXPIRES_INDEX: &str = "idx_device_authorizations_expires";
/// The grants of a client (client deletion) and of a user at a client
/// (withdrawn consent).
const CLIENT_USER_INDEX: &str = "idx_device_authorizations_client_user";
/// A user's approvals (forced logout).
const USER_STATUS_INDEX: &str = "idx_device_authorizations_user_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use DeviceAuthorizations as D;
        m.create_table(
            Table::create()
                .table(D::Table)
                .col(
                    ColumnDef::new(D::DeviceCodeHash)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(D::UserCodeHash).string_len(255).not_null())
                .col(ColumnDef::new(D::ClientId).string_len(255).not_null())
                .col(ColumnDef::new(D::Scope).text().not_null())
                .col(ColumnDef::new(D::Resource).text().null())
                // Seconds the client waits between polls (RFC 8628 3.2, 3.5).
                .col(ColumnDef::new(D::Interval).big_integer().not_null())
                .col(ColumnDef::new(D::LastPolledAt).big_integer().null())
                // pending, approved, denied or consumed.
                .col(ColumnDef::new(D::Status).string_len(16).not_null())
                // The approving sign-in (NULL until approved).
                .col(ColumnDef::new(D::UserId).string_len(255).null())
                .col(ColumnDef::new(D::AuthTime).big_integer().null())
                .col(ColumnDef::new(D::Acr).string_len(255).null())
                .col(ColumnDef::new(D::Amr).text().null())
                .col(ColumnDef::new(D::FamilyId).string_len(255).not_null())
                // The first access token, for revoking it on a replay.
                .col(ColumnDef::new(D::AccessTokenJti).string_len(255).null())
                .col(ColumnDef::new(D::AccessTokenExpiresAt).big_integer().null())
                .col(ColumnDef::new(D::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(D::ExpiresAt).big_integer().not_null())
                .col(ColumnDef::new(D::DecidedAt).big_integer().null())
                .col(ColumnDef::new(D::ConsumedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(USER_CODE_INDEX)
                .table(D::Table)
                .col(D::UserCodeHash)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(EXPIRES_INDEX)
                .table(D::Table)
                .col(D::ExpiresAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(CLIENT_USER_INDEX)
                .table(D::Table)
                .col(D::ClientId)
                .col(D::UserId)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(USER_STATUS_INDEX)
                .table(D::Table)
                .col(D::UserId)
                .col(D::Status)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(DeviceAuthorizations::Table).to_owned())
            .await
    }
}
