//! The JWKS document (RFC 7517 5) of a set of public keys.

use serde_json::{Map, Value};

use crate::PublicKey;

/// The JWKS document `{"keys":[...]}` for `keys`, public members only.
pub fn render_jwks(keys: &[PublicKey]) -> Vec<u8> {
    let keys: Vec<Value> = keys.iter().map(PublicKey::jwk_json).collect();
    let mut doc = Map::new();
    doc.insert("keys".into(), Value::Array(keys));
    Value::Object(doc).to_string().into_bytes()
}
