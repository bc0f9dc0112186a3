//! Second factors, hardened after review: wrong second-factor codes are
//! counted per account in the database (`factor_failures`), so the hard
//! limit holds across instances and restarts; a TOTP enrolment waiting
//! for its first code and a WebAuthn ceremony belong to the session that
//! began them (`session_hash`, the keyed hash of its id).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000001_factor_hardening"
    }
}

#[derive(DeriveIden)]
enum FactorFailures {
    Table,
    UserId,
    Failures,
    LastFailedAt,
}

#[derive(DeriveIden)]
enum TotpFactors {
    Table,
    SessionHash,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    SessionHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(FactorFailures::Table)
                .col(
                    ColumnDef::new(FactorFailures::UserId)
                        .string_len(255)
                        .not_null()
                        .primary_key(),
                )
                // Wrong codes in a row (a success deletes the row).
                .col(
                    ColumnDef::new(FactorFailures::Failures)
                        .integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(FactorFailures::LastFailedAt)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(TotpFactors::Table)
                .add_column(
                    ColumnDef::new(TotpFactors::SessionHash)
                        .string_len(255)
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(WebauthnCeremonies::Table)
                .add_column(
                    ColumnDef::new(WebauthnCeremonies::SessionHash)
                        .string_len(255)
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(WebauthnCeremonies::Table)
                .drop_column(WebauthnCeremonies::SessionHash)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(TotpFactors::Table)
                .drop_column(TotpFactors::SessionHash)
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table(FactorFailures::Table).to_owned())
            .await
    }
}
