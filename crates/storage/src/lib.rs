//! Gatehouse's persistence layer: one [`Store`] over SQLite (the embedded
//! default) or PostgreSQL, chosen by the database URL.
//!
//! Design choice: the rest of the workspace sees plain domain types
//! ([`model`]) and methods grouped by concern (users, clients, keys, ...);
//! sea-orm never leaks out of this crate. Secrets arrive here already hashed.
//! Every "read, then decide, then write" is a single conditional statement
//! (`UPDATE ... WHERE consumed_at IS NULL`) or a transaction whose first
//! statement is a write, so SQLite takes its write lock up front and
//! concurrent writers queue on `busy_timeout` instead of failing with
//! "database is locked".

mod authz_tx;
mod clients;
mod codes;
mod connect;
mod consents;
mod device;
pub use device::SLOW_DOWN_STEP;
mod entity;
mod error;
mod factors;
#[cfg(any(test, feature = "fault-injection"))]
mod faults;
mod guarded;
mod health;
mod keys;
pub use keys::{Revocation as KeyRevocation, Rotation};
pub mod model;
mod opaque;
mod passkeys;
mod pushed;
mod refresh;
pub use refresh::{RefreshRefusal, RefreshUse, RetryWindow};
mod registration;
mod resources;
mod revocation;
mod sessions;
mod status;
pub use status::StatusEntry;
mod users;

pub use connect::{Backend, PoolStats, Store, StoreOptions};
pub use error::StoreError;
