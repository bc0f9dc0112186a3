//! API scopes become opt-in and introspection needs a link to the API.
//!
//! - `clients.scopes` empty used to mean "every API scope"; it now means
//!   none. So that upgrading breaks nobody, every client with an empty
//!   list is given the API scopes that exist at upgrade.
//! - `registration_tokens.policy` (JSON, NULL = the default policy): what
//!   an initial access token lets a registrant ask for.
//! - `clients.registration_policy` (JSON, NULL for clients created by an
//!   operator): what a dynamically registered client may later update to.
//!   Clients registered before the upgrade keep what they have then.
//! - `resource_servers.clients` (JSON list of client ids): the clients
//!   linked to an API, which may introspect its tokens.

use std::collections::BTreeSet;

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, Statement},
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000003_client_scopes"
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    Scopes,
    RegistrationPolicy,
}

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    Policy,
}

#[derive(DeriveIden)]
enum ResourceServers {
    Table,
    Clients,
}

fn list(text: &str) -> Result<Vec<String>, DbErr> {
    serde_json::from_str(text).map_err(|e| DbErr::Custom(format!("a stored list: {e}")))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters a table one change at a time.
        m.alter_table(
            Table::alter()
                .table(RegistrationTokens::Table)
                .add_column(ColumnDef::new(RegistrationTokens::Policy).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Clients::Table)
                .add_column(ColumnDef::new(Clients::RegistrationPolicy).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(ResourceServers::Table)
                .add_column(
                    ColumnDef::new(ResourceServers::Clients)
                        .text()
                        .not_null()
                        .default("[]"),
                )
                .to_owned(),
        )
        .await?;

        let db = m.get_connection();
        let backend = m.get_database_backend();
        let mut api_scopes = BTreeSet::new();
        for row in db
            .query_all(Statement::from_string(
                backend,
                "SELECT scopes FROM resource_servers",
            ))
            .await?
        {
            let scopes: String = row.try_get("", "scopes")?;
            api_scopes.extend(list(&scopes)?);
        }
        let api_scopes: Vec<String> = api_scopes.into_iter().collect();
        for row in db
            .query_all(Statement::from_string(
                backend,
                "SELECT id, scopes, grant_types, registration_token_hash FROM clients",
            ))
            .await?
        {
            let id: String = row.try_get("", "id")?;
            let mut scopes = list(&row.try_get::<String>("", "scopes")?)?;
            let grant_types = list(&row.try_get::<String>("", "grant_types")?)?;
            let registered: Option<String> = row.try_get("", "registration_token_hash")?;
            let widened = scopes.is_empty() && !api_scopes.is_empty();
            if widened {
                scopes.clone_from(&api_scopes);
            }
            let mut update = Query::update();
            update
                .table(Clients::Table)
                .and_where(Expr::col(Clients::Id).eq(id));
            if widened {
                update.value(Clients::Scopes, serde_json::json!(scopes).to_string());
            }
            if registered.is_some() {
                let policy = serde_json::json!({ "grant_types": grant_types, "scopes": scopes });
                update.value(Clients::RegistrationPolicy, policy.to_string());
            }
            if widened || registered.is_some() {
                m.exec_stmt(update).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ResourceServers::Table)
                .drop_column(ResourceServers::Clients)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Clients::Table)
                .drop_column(Clients::RegistrationPolicy)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(RegistrationTokens::Table)
                .drop_column(RegistrationTokens::Policy)
                .to_owned(),
        )
        .await
    }
}
