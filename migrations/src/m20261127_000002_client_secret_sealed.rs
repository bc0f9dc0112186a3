//! client_secret_jwt: the client secret sealed with the key-encryption key
//! (a keyed hash cannot check an HMAC made with the secret), and the
//! registered `token_endpoint_auth_signing_alg`. Both nullable: existing
//! clients keep working unchanged.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000002_client_secret_sealed"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientSecretSealed,
    TokenEndpointAuthSigningAlg,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(ColumnDef::new(Clients::ClientSecretSealed).binary().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::TokenEndpointAuthSigningAlg)
                            .text()
                            .null(),
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
                    .drop_column(Clients::TokenEndpointAuthSigningAlg)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::ClientSecretSealed)
                    .to_owned(),
            )
            .await
    }
}
