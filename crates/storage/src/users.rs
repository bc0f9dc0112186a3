//! Users: the people who sign in.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::{entity::users, model::User, Store, StoreError};

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        User {
            id: m.id.into(),
            username: m.username,
            email: m.email,
            email_verified: m.email_verified,
            name: m.name,
            password_hash: m.password_hash,
            disabled: m.disabled,
            created_at: m.created_at,
            updated_at: m.updated_at,
            mfa_required: m.mfa_required,
        }
    }
}

impl Store {
    /// Inserts a user. A duplicate username is [`StoreError::Conflict`].
    pub async fn create_user(&self, u: &User) -> Result<(), StoreError> {
        users::ActiveModel {
            id: Set(u.id.to_string()),
            username: Set(u.username.clone()),
            email: Set(u.email.clone()),
            email_verified: Set(u.email_verified),
            name: Set(u.name.clone()),
            password_hash: Set(u.password_hash.clone()),
            disabled: Set(u.disabled),
            created_at: Set(u.created_at),
            updated_at: Set(u.updated_at),
            mfa_required: Set(u.mfa_required),
        }
        .insert(&self.db)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("username {:?} is taken", u.username))
            }
            other => other,
        })?;
        Ok(())
    }

    /// Looks a user up by normalized username.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(users::Entity::find()
            .filter(users::Column::Username.eq(username))
            .one(&self.db)
            .await?
            .map(User::from))
    }

    /// Looks a user up by subject id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(users::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(User::from))
    }

    /// Every user, ordered by username.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(users::Entity::find()
            .order_by_asc(users::Column::Username)
            .all(&self.db)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }

    /// Sets the disabled flag. Returns [`StoreError::NotFound`] for an unknown username.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> Result<User, StoreError> {
        let res = users::Entity::update_many()
            .col_expr(users::Column::Disabled, disabled.into())
            .col_expr(users::Column::UpdatedAt, now.into())
            .filter(users::Column::Username.eq(username))
            .exec(&self.db)
            .await?;
        if res.rows_affected == 0 {
            return Err(StoreError::NotFound(format!("no user named {username:?}")));
        }
        self.user_by_username(username)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no user named {username:?}")))
    }
}
