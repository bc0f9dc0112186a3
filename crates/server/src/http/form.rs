//! Parameter parsing shared by every endpoint: urlencoded forms and query
//! strings, with duplicates detected (RFC 6749 3.1 and 3.2: "parameters
//! MUST NOT be included more than once") and counts and sizes bounded.

use std::collections::HashMap;

use axum::http::{header, HeaderMap};

use super::error::AppError;

/// Most parameters a request may carry.
const MAX_PARAMS: usize = 64;

/// Parsed parameters: each name at most once.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes. A repeated name or
    /// too many parameters is `invalid_request`; empty values count as absent
    /// (RFC 6749 3.1).
    pub fn parse(bytes: &[u8]) -> Result<Params, AppError> {
        let mut map = HashMap::new();
        for (i, (k, v)) in form_urlencoded::parse(bytes).enumerate() {
            if i >= MAX_PARAMS {
                return Err(AppError::invalid_request("too many parameters"));
            }
            if map.contains_key(k.as_ref()) {
                return Err(AppError::invalid_request(format!(
                    "parameter {} is repeated",
                    short(&k)
                )));
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Params(map))
    }

    /// Parses like [`Params::parse`] but keeps the first of repeated
    /// names and reports the first repeated name, so the authorization
    /// endpoint can still find a trustworthy redirect URI to send the
    /// error to.
    pub fn parse_lenient(bytes: &[u8]) -> (Params, Option<String>, bool) {
        let mut map = HashMap::new();
        let mut dup = None;
        let mut too_many = false;
        for (i, (k, v)) in form_urlencoded::parse(bytes).enumerate() {
            if i >= MAX_PARAMS {
                too_many = true;
                break;
            }
            if map.contains_key(k.as_ref()) {
                dup.get_or_insert_with(|| k.clone().into_owned());
                continue;
            }
            map.insert(k.into_owned(), v.into_owned());
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        (Params(map), dup, too_many)
    }

    /// The parameters as a query string.
    pub fn to_query(&self) -> String {
        let mut pairs: Vec<(&String, &String)> = self.0.iter().collect();
        pairs.sort();
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// Sets or (with `None`) removes a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match value {
            Some(v) if !v.is_empty() => {
                self.0.insert(name.to_owned(), v);
            }
            _ => {
                self.0.remove(name);
            }
        }
    }

    /// The value of `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &'static str) -> Result<&str, AppError> {
        self.get(name)
            .ok_or_else(|| AppError::invalid_request(format!("missing parameter {name}")))
    }

    /// Every parameter.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).filter(|c| !c.is_control()).collect()
}

/// Requires `Content-Type: application/x-www-form-urlencoded` (RFC 6749 3.2).
pub fn require_form(headers: &HeaderMap) -> Result<(), AppError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .map(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
                .unwrap_or(false)
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(AppError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ))
    }
}
