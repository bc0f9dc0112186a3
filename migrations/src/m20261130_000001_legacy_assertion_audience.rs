//! `legacy_assertion_audience`: a client whose assertions may also name the
//! token endpoint URL as `aud` (the issuer alone is the rule). Not null,
//! false for existing clients: they get the strict rule.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000001_legacy_assertion_audience"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    LegacyAssertionAudience,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(
                        ColumnDef::new(Clients::LegacyAssertionAudience)
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
                    .drop_column(Clients::LegacyAssertionAudience)
                    .to_owned(),
            )
            .await
    }
}
