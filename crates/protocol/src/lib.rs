//! Gatehouse's protocol vocabulary as types, parsed once where a value
//! enters (a request, a command line, a database row) and never compared as
//! strings afterwards: [`GrantType`], [`AuthMethod`], [`TokenFormat`],
//! the authentication levels [`Acr`] and methods [`Amr`], and
//! the identifiers [`ClientId`], [`UserId`] and [`Kid`]. Each name's `Display` and
//! serde form is its exact wire (and stored) string.
//!
//! The storage layer and the server both speak these types, so this crate
//! depends on nothing of either: serde only.

mod ids;
mod names;

pub use ids::{ClientId, Jkt, Kid, UserId};
pub use names::{Acr, Amr, AuthMethod, GrantType, TokenFormat, TokenTypeUri, UnknownName};
