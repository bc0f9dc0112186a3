//! Consents: which scopes a user has granted to which client.

use sea_orm::{sea_query::OnConflict, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::{entity::consents, error::corrupt, model::Consent, Store, StoreError};

impl Store {
    /// The scopes `user_id` has granted `client_id` (empty when none).
    pub async fn consented_scopes(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        match consents::Entity::find_by_id((user_id.to_owned(), client_id.to_owned()))
            .one(&self.db)
            .await?
        {
            Some(m) => serde_json::from_str(&m.scopes).map_err(|e| corrupt("consent scopes", e)),
            None => Ok(Vec::new()),
        }
    }

    /// Records (replaces) the scopes granted.
    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        consents::Entity::insert(consents::ActiveModel {
            user_id: Set(user_id.to_owned()),
            client_id: Set(client_id.to_owned()),
            scopes: Set(serde_json::Value::from(scopes.to_vec()).to_string()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([consents::Column::UserId, consents::Column::ClientId])
                .update_columns([consents::Column::Scopes, consents::Column::UpdatedAt])
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// Every consent `user_id` has given, the most recently granted first
    /// (the account page).
    pub async fn consents_of_user(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        consents::Entity::find()
            .filter(consents::Column::UserId.eq(user_id))
            .order_by_desc(consents::Column::UpdatedAt)
            .order_by_asc(consents::Column::ClientId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                Ok(Consent {
                    scopes: serde_json::from_str(&m.scopes)
                        .map_err(|e| corrupt("consent scopes", e))?,
                    client_id: m.client_id.into(),
                    created_at: m.created_at,
                    updated_at: m.updated_at,
                })
            })
            .collect()
    }

    /// Forgets the consent `user_id` gave `client_id`: the client must ask
    /// again. Returns whether there was one.
    pub async fn delete_consent(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        let res = consents::Entity::delete_by_id((user_id.to_owned(), client_id.to_owned()))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected > 0)
    }
}
