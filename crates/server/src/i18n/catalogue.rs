//! One language's messages: read from TOML into a flat map of dotted keys
//! (`[login] title = ".."` is `login.title`), and how a message is filled
//! in.
//!
//! A value is a message, or a table of plural forms (`one`, `other`)
//! chosen by the `count` argument. `{name}` in a message is a placeholder
//! for the argument `name`; a placeholder without an argument stays as
//! written (the passkey page's script fills `{error}` itself).

use std::collections::HashMap;

/// A catalogue that cannot be read: the TOML, or a value that is neither a
/// message nor plural forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogueError(pub String);

impl std::fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "message catalogue: {}", self.0)
    }
}

impl std::error::Error for CatalogueError {}

/// A value for a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    /// A number: also what `count` chooses plural forms by.
    Count(i64),
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Arg::Text(s.clone())
    }
}

impl From<&i64> for Arg {
    fn from(n: &i64) -> Self {
        Arg::Count(*n)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Count(n)
    }
}

impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Arg::Count(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<&tera::Value> for Arg {
    fn from(v: &tera::Value) -> Self {
        match v {
            tera::Value::String(s) => Arg::Text(s.clone()),
            tera::Value::Number(n) => match n.as_i64() {
                Some(i) => Arg::Count(i),
                None => Arg::Text(n.to_string()),
            },
            tera::Value::Null => Arg::Text(String::new()),
            other => Arg::Text(other.to_string()),
        }
    }
}

impl std::fmt::Display for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arg::Text(s) => f.write_str(s),
            Arg::Count(n) => write!(f, "{n}"),
        }
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Text(String),
    /// Plural forms: `one` where the language's rule says so, else `other`.
    Plural {
        one: String,
        other: String,
    },
}

impl Entry {
    /// The message with its placeholders filled; `is_one` is the
    /// language's plural rule.
    pub fn render(&self, is_one: impl Fn(i64) -> bool, args: &[(&str, Arg)]) -> String {
        let text = match self {
            Entry::Text(t) => t,
            Entry::Plural { one, other } => {
                let count = args.iter().find_map(|(name, value)| match value {
                    Arg::Count(n) if *name == "count" => Some(*n),
                    _ => None,
                });
                if count.is_some_and(is_one) {
                    one
                } else {
                    other
                }
            }
        };
        fill(text, args)
    }

    /// Its texts: one, or each plural form.
    #[cfg(test)]
    pub fn texts(&self) -> Vec<&str> {
        match self {
            Entry::Text(t) => vec![t],
            Entry::Plural { one, other } => vec![one, other],
        }
    }
}

/// `text` with each `{name}` that has an argument replaced by its value.
fn fill(text: &str, args: &[(&str, Arg)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let (before, from_brace) = rest.split_at(open);
        out.push_str(before);
        let after = from_brace.get(1..).unwrap_or("");
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = after.get(..name_len).unwrap_or("");
        let closed = after.get(name_len..).is_some_and(|r| r.starts_with('}'));
        match args.iter().find(|(n, _)| *n == name) {
            Some((_, value)) if closed && !name.is_empty() => {
                out.push_str(&value.to_string());
                rest = after.get(name_len + 1..).unwrap_or("");
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The names of the placeholders in `text`, in order.
#[cfg(test)]
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = rest.get(open + 1..).unwrap_or("");
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if len > 0 && after.get(len..).is_some_and(|r| r.starts_with('}')) {
            names.extend(after.get(..len));
        }
        rest = after;
    }
    names
}

/// One language's messages by dotted key.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    entries: HashMap<String, Entry>,
}

impl Catalogue {
    /// Reads a catalogue's TOML.
    pub fn parse(source: &str) -> Result<Catalogue, CatalogueError> {
        let table: toml::Table = source
            .parse()
            .map_err(|e: toml::de::Error| CatalogueError(e.message().to_owned()))?;
        let mut entries = HashMap::new();
        flatten("", &table, &mut entries)?;
        Ok(Catalogue { entries })
    }

    /// This catalogue with `other`'s messages in place of its own: a
    /// translation over English, whose messages stay where it has none.
    pub fn overlay(mut self, other: Catalogue) -> Catalogue {
        self.entries.extend(other.entries);
        self
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every key, for the tests that compare catalogues.
    #[cfg(test)]
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// Whether `table` holds plural forms rather than messages.
fn is_plural(table: &toml::Table) -> bool {
    table.contains_key("other") && table.keys().all(|k| k == "one" || k == "other")
}

fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut HashMap<String, Entry>,
) -> Result<(), CatalogueError> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::String(s) => {
                out.insert(key, Entry::Text(s.clone()));
            }
            toml::Value::Table(t) if is_plural(t) => {
                let form = |k: &str| match t.get(k) {
                    Some(toml::Value::String(s)) => Ok(s.clone()),
                    _ => Err(CatalogueError(format!("{key}.{k} is not a string"))),
                };
                let other = form("other")?;
                let one = if t.contains_key("one") {
                    form("one")?
                } else {
                    other.clone()
                };
                out.insert(key, Entry::Plural { one, other });
            }
            toml::Value::Table(t) => flatten(&key, t, out)?,
            _ => {
                return Err(CatalogueError(format!(
                    "{key} is neither a message nor a section"
                )))
            }
        }
    }
    Ok(())
}
