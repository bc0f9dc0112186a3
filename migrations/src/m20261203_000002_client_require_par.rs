//! `clients.require_pushed_authorization_requests` (RFC 9126 6): the client
//! may start an authorization only with a pushed request (`/par`). Not
//! null, false by default: existing clients keep sending their requests to
//! `/authorize` directly.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000002_client_require_par"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequirePushedAuthorizationRequests,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::RequirePushedAuthorizationRequests)
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
                    .drop_column(Clients::RequirePushedAuthorizationRequests)
                    .to_owned(),
            )
            .await
    }
}
