//! DPoP (RFC 9449): a client may require its access tokens to be bound
//! (`clients.dpop_bound_access_tokens`); a code bound to a key by
//! `dpop_jkt`, a public client's refresh tokens and an opaque access token
//! record the thumbprint of the key they are bound to (`dpop_jkt`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000001_dpop"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    DpopBoundAccessTokens,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
}

#[derive(DeriveIden)]
enum OpaqueTokens {
    Table,
}

#[derive(DeriveIden)]
enum Column {
    DpopJkt,
}

/// The tables that gain `dpop_jkt`.
fn bound_tables() -> [DynIden; 3] {
    [
        AuthorizationCodes::Table.into_iden(),
        RefreshTokens::Table.into_iden(),
        OpaqueTokens::Table.into_iden(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Clients::Table)
                .add_column(
                    ColumnDef::new(Clients::DpopBoundAccessTokens)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        // One statement per column: SQLite adds one column per ALTER.
        for table in bound_tables() {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(ColumnDef::new(Column::DpopJkt).string_len(64).null())
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in bound_tables() {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .drop_column(Column::DpopJkt)
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(Clients::Table)
                .drop_column(Clients::DpopBoundAccessTokens)
                .to_owned(),
        )
        .await
    }
}
