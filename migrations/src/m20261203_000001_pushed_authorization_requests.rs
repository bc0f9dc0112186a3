//! Pushed authorization requests (RFC 9126): an authorization request a
//! client pushed to `/par`, checked there and kept until its `request_uri`
//! is presented at `/authorize` (once, by the same client, within 60
//! seconds). The random part of the `request_uri` is stored as a keyed
//! hash; the checked request as JSON.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_pushed_authorization_requests"
    }
}

#[derive(DeriveIden)]
enum PushedAuthorizationRequests {
    Table,
    IdHash,
    ClientId,
    Request,
    CreatedAt,
    ExpiresAt,
    RedeemedAt,
}

const EXPIRES_INDEX: &str = "idx_pushed_requests_expires";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use PushedAuthorizationRequests as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(
                    ColumnDef::new(P::IdHash)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(P::ClientId).string_len(255).not_null())
                // The checked request, as JSON.
                .col(ColumnDef::new(P::Request).text().not_null())
                .col(ColumnDef::new(P::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(P::ExpiresAt).big_integer().not_null())
                // When its request_uri was presented at /authorize.
                .col(ColumnDef::new(P::RedeemedAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name(EXPIRES_INDEX)
                .table(P::Table)
                .col(P::ExpiresAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(
            Table::drop()
                .table(PushedAuthorizationRequests::Table)
                .to_owned(),
        )
        .await
    }
}
