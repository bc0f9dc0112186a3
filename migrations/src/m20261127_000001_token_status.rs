//! The token status list (IETF OAuth Token Status List): which status-list
//! indices are revoked, and the counter instances reserve index blocks from.
//!
//! A row exists only for an access token that is bound to a user (its
//! issuance already writes: a code redemption or a refresh rotation) or that
//! was revoked one by one. Client-credentials tokens get an index without a
//! row; revoking one inserts its row with `revoked` set.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261127_000001_token_status"
    }
}

#[derive(DeriveIden)]
enum TokenStatus {
    Table,
    Idx,
    ListId,
    Subject,
    Family,
    ExpiresAt,
    Revoked,
}

#[derive(DeriveIden)]
enum Epochs {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TokenStatus::Table)
                .col(
                    ColumnDef::new(TokenStatus::Idx)
                        .big_integer()
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(TokenStatus::ListId).big_integer().not_null())
                .col(ColumnDef::new(TokenStatus::Subject).string_len(255).null())
                .col(ColumnDef::new(TokenStatus::Family).string_len(255).null())
                .col(
                    ColumnDef::new(TokenStatus::ExpiresAt)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TokenStatus::Revoked)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await?;
        for (name, col) in [
            ("idx_token_status_list", TokenStatus::ListId),
            ("idx_token_status_subject", TokenStatus::Subject),
            ("idx_token_status_family", TokenStatus::Family),
            ("idx_token_status_expires", TokenStatus::ExpiresAt),
        ] {
            m.create_index(
                Index::create()
                    .name(name)
                    .table(TokenStatus::Table)
                    .col(col)
                    .to_owned(),
            )
            .await?;
        }
        // The next unreserved global index; instances take blocks from it.
        let seed = Query::insert()
            .into_table(Epochs::Table)
            .columns([Epochs::Name, Epochs::Value])
            .values_panic(["status_index".into(), 0i64.into()])
            .to_owned();
        m.exec_stmt(seed).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TokenStatus::Table).to_owned())
            .await?;
        let unseed = Query::delete()
            .from_table(Epochs::Table)
            .and_where(Expr::col(Epochs::Name).eq("status_index"))
            .to_owned();
        m.exec_stmt(unseed).await?;
        Ok(())
    }
}
