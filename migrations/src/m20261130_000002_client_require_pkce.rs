//! `clients.require_pkce`: the client must send a PKCE challenge on every
//! authorization request, even where the rules would let it omit one
//! (RFC 9700 2.1.1). Not null, false by default: existing clients keep the
//! general rule.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000002_client_require_pkce"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequirePkce,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::RequirePkce)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::RequirePkce)
                    .to_owned(),
            )
            .await
    }
}
