//! Authorization transactions: an authorization request checked once at
//! `/authorize` and kept server-side while the browser goes through login
//! and consent, so any instance can continue it. Bound to the browser (the
//! hash of a value in an HttpOnly cookie), short lived, consumed once.
//! The id and the browser binding are stored as keyed hashes.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000005_authorization_transactions"
    }
}

#[derive(DeriveIden)]
enum AuthorizationTransactions {
    Table,
    IdHash,
    BrowserHash,
    Request,
    SessionIdHash,
    AuthTime,
    ConsentedAt,
    ConsentSessionHash,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

const EXPIRES_INDEX: &str = "idx_authz_tx_expires";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AuthorizationTransactions as T;
        m.create_table(
            Table::create()
                .table(T::Table)
                .col(
                    ColumnDef::new(T::IdHash)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(T::BrowserHash).string_len(255).not_null())
                // The checked request, as JSON.
                .col(ColumnDef::new(T::Request).text().not_null())
                // The sign-in performed during the transaction, if any.
                .col(ColumnDef::new(T::SessionIdHash).string_len(255).null())
                .col(ColumnDef::new(T::AuthTime).big_integer().null())
                // When the user approved on the consent page during it.
                .col(ColumnDef::new(T::ConsentedAt).big_integer().null())
                // The session (its id hash) whose user approved.
                .col(ColumnDef::new(T::ConsentSessionHash).string_len(255).null())
                .col(ColumnDef::new(T::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(T::ExpiresAt).big_integer().not_null())
                .col(ColumnDef::new(T::ConsumedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(EXPIRES_INDEX)
                .table(T::Table)
                .col(T::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(AuthorizationTransactions::Table)
                .to_owned(),
        )
        .await
    }
}
