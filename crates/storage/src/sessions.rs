//! Login sessions: the server-side state behind the session cookie.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use gatehouse_protocol::Acr;

use crate::{
    entity::{session_clients, sessions},
    error::corrupt,
    model::Session,
    Store, StoreError,
};

impl TryFrom<sessions::Model> for Session {
    type Error = StoreError;
    fn try_from(m: sessions::Model) -> Result<Self, StoreError> {
        Ok(Session {
            amr: serde_json::from_str(&m.amr).map_err(|e| corrupt("session amr", e))?,
            id_hash: m.id_hash,
            sid: m.sid,
            user_id: m.user_id.into(),
            auth_time: m.auth_time,
            acr: m.acr,
            created_at: m.created_at,
            last_seen_at: m.last_seen_at,
            expires_at: m.expires_at,
            ip: m.ip,
            user_agent: m.user_agent,
        })
    }
}

impl Store {
    /// Stores a new session.
    pub async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        sessions::ActiveModel {
            id_hash: Set(s.id_hash.clone()),
            sid: Set(s.sid.clone()),
            user_id: Set(s.user_id.to_string()),
            auth_time: Set(s.auth_time),
            amr: Set(serde_json::Value::from(s.amr.clone()).to_string()),
            acr: Set(s.acr.clone()),
            created_at: Set(s.created_at),
            last_seen_at: Set(s.last_seen_at),
            expires_at: Set(s.expires_at),
            ip: Set(s.ip.clone()),
            user_agent: Set(s.user_agent.clone()),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The live session with this id hash: not past its absolute expiry and
    /// seen within `idle_timeout` seconds.
    pub async fn live_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_timeout: i64,
    ) -> Result<Option<Session>, StoreError> {
        let found = sessions::Entity::find_by_id(id_hash.to_owned())
            .filter(sessions::Column::ExpiresAt.gt(now))
            .filter(sessions::Column::LastSeenAt.gt(now - idle_timeout))
            .one(&self.db)
            .await?;
        found.map(Session::try_from).transpose()
    }

    /// Records activity on a session (sliding idle timeout).
    pub async fn touch_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, now.into())
            .filter(sessions::Column::IdHash.eq(id_hash))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Ends one session. Returns the ended session, if there was one.
    pub async fn delete_session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        let Some(m) = sessions::Entity::find_by_id(id_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        sessions::Entity::delete_by_id(id_hash.to_owned())
            .exec(&self.db)
            .await?;
        Session::try_from(m).map(Some)
    }

    /// Records a second factor on a live session (step-up): its level
    /// rises to `acr` (never down: a level it already has above stays),
    /// `amr` joins its methods, its `auth_time` does not change (that is
    /// the time of the primary authentication), and its id becomes
    /// `new_id_hash` (a new cookie at a privilege change: a copy of the old
    /// one is worth nothing). Concurrent step-ups of one session merge:
    /// the write holds only if the row is as it was read, else it is read
    /// again. Nothing to change leaves the session and its id as they are.
    /// Returns the session as it is now, or `None` when it ended.
    pub async fn raise_session(
        &self,
        id_hash: &str,
        new_id_hash: &str,
        acr: Acr,
        amr: &[String],
    ) -> Result<Option<Session>, StoreError> {
        for _ in 0..4 {
            let Some(m) = sessions::Entity::find_by_id(id_hash.to_owned())
                .one(&self.db)
                .await?
            else {
                return Ok(None);
            };
            // A level this release does not know counts as one factor.
            let level = m
                .acr
                .as_deref()
                .and_then(|a| a.parse::<Acr>().ok())
                .unwrap_or(Acr::Pwd);
            let target = level.max(acr);
            let current = Session::try_from(m.clone())?;
            let mut merged = current.amr.clone();
            for a in amr {
                if !merged.contains(a) {
                    merged.push(a.clone());
                }
            }
            if m.acr.as_deref() == Some(target.as_str()) && merged == current.amr {
                return Ok(Some(current));
            }
            let as_read = match &m.acr {
                Some(a) => sessions::Column::Acr.eq(a.clone()),
                None => sessions::Column::Acr.is_null(),
            };
            let res = sessions::Entity::update_many()
                .col_expr(sessions::Column::IdHash, new_id_hash.into())
                .col_expr(
                    sessions::Column::Acr,
                    Some(target.as_str().to_owned()).into(),
                )
                .col_expr(
                    sessions::Column::Amr,
                    serde_json::Value::from(merged).to_string().into(),
                )
                .filter(sessions::Column::IdHash.eq(id_hash))
                .filter(sessions::Column::Amr.eq(m.amr.clone()))
                .filter(as_read)
                .exec(&self.db)
                .await?;
            if res.rows_affected == 1 {
                return sessions::Entity::find_by_id(new_id_hash.to_owned())
                    .one(&self.db)
                    .await?
                    .map(Session::try_from)
                    .transpose();
            }
        }
        Err(StoreError::Conflict(
            "the session kept changing while it was raised".into(),
        ))
    }

    /// Ends the session `sid` of `user_id` (the account page: a user ends
    /// one of her own sessions, named by its public id). Returns it.
    pub async fn delete_user_session(
        &self,
        user_id: &str,
        sid: &str,
    ) -> Result<Option<Session>, StoreError> {
        let Some(m) = sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::Sid.eq(sid))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let gone = sessions::Entity::delete_by_id(m.id_hash.clone())
            .exec(&self.db)
            .await?;
        if gone.rows_affected == 0 {
            return Ok(None);
        }
        Session::try_from(m).map(Some)
    }

    /// A user's sessions, newest first.
    pub async fn sessions_of_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .order_by_desc(sessions::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Session::try_from)
            .collect()
    }

    /// Ends every session of a user. Returns how many ended.
    pub async fn delete_sessions_of_user(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Deletes sessions past their absolute expiry or idle for too long.
    pub async fn prune_sessions(&self, now: i64, idle_timeout: i64) -> Result<u64, StoreError> {
        use sea_orm::Condition;
        Ok(sessions::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(sessions::Column::ExpiresAt.lte(now))
                    .add(sessions::Column::LastSeenAt.lte(now - idle_timeout)),
            )
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Records that `client_id` received tokens through session `sid`
    /// (idempotent), for back-channel logout.
    pub async fn add_session_client(
        &self,
        sid: &str,
        client_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        use sea_orm::sea_query::OnConflict;
        session_clients::Entity::insert(session_clients::ActiveModel {
            sid: Set(sid.to_owned()),
            client_id: Set(client_id.to_owned()),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                session_clients::Column::Sid,
                session_clients::Column::ClientId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .do_nothing()
        .exec(&self.db)
        .await?;
        Ok(())
    }

    /// The clients that received tokens through session `sid`.
    pub async fn session_clients(&self, sid: &str) -> Result<Vec<String>, StoreError> {
        Ok(session_clients::Entity::find()
            .filter(session_clients::Column::Sid.eq(sid))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.client_id)
            .collect())
    }

    /// Forgets the client list of sessions that no longer exist.
    pub async fn prune_session_clients(&self, created_before: i64) -> Result<u64, StoreError> {
        Ok(session_clients::Entity::delete_many()
            .filter(session_clients::Column::CreatedAt.lt(created_before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
