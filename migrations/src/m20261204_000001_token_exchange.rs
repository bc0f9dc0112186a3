//! Token exchange (RFC 8693): a resource server lists the clients that may
//! exchange a token for one addressed to it
//! (`resource_servers.allow_exchange_from`, a JSON list of client ids,
//! empty by default: nobody), and an opaque access token keeps the
//! delegation chain it carries (`opaque_tokens.act`, the `act` claim as
//! JSON; NULL for a token that was not exchanged).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000001_token_exchange"
    }
}

#[derive(DeriveIden)]
enum ResourceServers {
    Table,
    AllowExchangeFrom,
}

#[derive(DeriveIden)]
enum OpaqueTokens {
    Table,
    Act,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        m.alter_table(
            Table::alter()
                .table(ResourceServers::Table)
                .add_column(
                    ColumnDef::new(ResourceServers::AllowExchangeFrom)
                        .text()
                        .not_null()
                        .default("[]"),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(OpaqueTokens::Table)
                .add_column(ColumnDef::new(OpaqueTokens::Act).text().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(OpaqueTokens::Table)
                .drop_column(OpaqueTokens::Act)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ResourceServers::Table)
                .drop_column(ResourceServers::AllowExchangeFrom)
                .to_owned(),
        )
        .await
    }
}
