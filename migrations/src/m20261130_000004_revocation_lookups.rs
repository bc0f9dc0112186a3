//! What revocation looks tokens up by. Opaque access tokens remember their
//! grant (`family_id`, nullable: client_credentials tokens have none, and
//! tokens issued before this migration keep working), so revoking a grant
//! revokes them too. Indexes: opaque tokens by family and by client, refresh
//! tokens by client (deleting a client revokes its tokens), codes by user
//! (a forced logout deletes the user's outstanding codes).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000004_revocation_lookups"
    }
}

#[derive(DeriveIden)]
enum OpaqueTokens {
    Table,
    FamilyId,
    ClientId,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ClientId,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    UserId,
}

const FAMILY_INDEX: &str = "idx_opaque_family";
const CLIENT_INDEX: &str = "idx_opaque_client";
const REFRESH_CLIENT_INDEX: &str = "idx_refresh_client";
const CODES_USER_INDEX: &str = "idx_codes_user";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OpaqueTokens::Table)
                    .add_column(
                        ColumnDef::new(OpaqueTokens::FamilyId)
                            .string_len(255)
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            (FAMILY_INDEX, OpaqueTokens::FamilyId),
            (CLIENT_INDEX, OpaqueTokens::ClientId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(OpaqueTokens::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(REFRESH_CLIENT_INDEX)
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CODES_USER_INDEX)
                    .table(AuthorizationCodes::Table)
                    .col(AuthorizationCodes::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(CODES_USER_INDEX)
                    .table(AuthorizationCodes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(REFRESH_CLIENT_INDEX)
                    .table(RefreshTokens::Table)
                    .to_owned(),
            )
            .await?;
        for name in [CLIENT_INDEX, FAMILY_INDEX] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(OpaqueTokens::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(OpaqueTokens::Table)
                    .drop_column(OpaqueTokens::FamilyId)
                    .to_owned(),
            )
            .await
    }
}
