//! Which language a request asks for: the `Accept-Language` header (RFC
//! 9110 12.5.4: language ranges with q-values) and the `ui_locales`
//! parameter of an authorization request (OIDC Core 3.1.2.1: BCP 47 tags,
//! most preferred first). Both are matched by primary subtag (`fr-CA` is
//! French). Neither ever fails a page: what cannot be read is skipped, and
//! only the first few ranges or tags are looked at, however long the
//! value.

use axum::http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Lang;

/// Language ranges of `Accept-Language` looked at; the rest is ignored.
const MAX_RANGES: usize = 32;
/// `ui_locales` tags kept; the rest is ignored.
const MAX_TAGS: usize = 8;
/// The longest tag kept (BCP 47 tags in use are far shorter).
const MAX_TAG_LEN: usize = 35;

/// Whether `tag` is a well-formed language tag or range (RFC 4647 2.1
/// without `*`): 1–8 letters, then subtags of 1–8 letters or digits.
fn well_formed(tag: &str) -> bool {
    if tag.len() > MAX_TAG_LEN {
        return false;
    }
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A q-value (RFC 9110 12.4.2) in thousandths: `0`, `0.5`, `1.000`.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// One element of `Accept-Language`: its range and weight (1 when absent).
fn range_and_weight(item: &str) -> Option<(&str, u16)> {
    let mut parts = item.split(';');
    let range = parts.next()?.trim();
    if range != "*" && !well_formed(range) {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (name, value) = param.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("q") {
            q = qvalue(value.trim())?;
        }
    }
    Some((range, q))
}

/// The language `Accept-Language` prefers among those the pages are
/// written in: the highest weight; between equals, the range named first;
/// `*` stands for every language no range names. English when none
/// matches, the header is absent or cannot be read.
pub fn accept_language(header: Option<&HeaderValue>) -> Lang {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return Lang::default();
    };
    // (weight, position) of the best range naming each language, and of `*`.
    let mut named: [Option<(u16, usize)>; Lang::ALL.len()] = [None; Lang::ALL.len()];
    let mut any: Option<(u16, usize)> = None;
    for (pos, item) in value.split(',').take(MAX_RANGES).enumerate() {
        let Some((range, q)) = range_and_weight(item) else {
            continue;
        };
        if range == "*" {
            any = any.or(Some((q, pos)));
            continue;
        }
        let Some(i) = Lang::from_tag(range).and_then(|l| Lang::ALL.iter().position(|x| *x == l))
        else {
            continue;
        };
        if let Some(slot) = named.get_mut(i) {
            if slot.is_none_or(|(best, _)| q > best) {
                *slot = Some((q, pos));
            }
        }
    }
    let mut chosen: Option<(Lang, u16, usize)> = None;
    for (lang, score) in Lang::ALL.into_iter().zip(named) {
        let Some((q, pos)) = score.or(any) else {
            continue;
        };
        let better = match chosen {
            None => true,
            Some((_, best_q, best_pos)) => q > best_q || (q == best_q && pos < best_pos),
        };
        if q > 0 && better {
            chosen = Some((lang, q, pos));
        }
    }
    chosen.map_or_else(Lang::default, |(lang, _, _)| lang)
}

/// The `ui_locales` of an authorization request: its well-formed tags,
/// most preferred first (at most [`MAX_TAGS`]). Kept with the transaction
/// as the space-separated string, tags this release does not speak
/// included, so a later release that does can honour them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UiLocales(Vec<String>);

impl UiLocales {
    /// Reads the parameter; malformed tags are dropped, never an error
    /// (OIDC Core 3.1.2.1: unsupported locales SHOULD NOT fail a request).
    pub fn parse(value: &str) -> UiLocales {
        UiLocales(
            value
                .split_ascii_whitespace()
                .filter(|t| well_formed(t))
                .take(MAX_TAGS)
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first tag the pages are written in.
    pub fn first_supported(&self) -> Option<Lang> {
        self.0.iter().find_map(|t| Lang::from_tag(t))
    }
}

impl Serialize for UiLocales {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.join(" "))
    }
}

impl<'de> Deserialize<'de> for UiLocales {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(UiLocales::parse(&s))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Lang {
        accept_language(Some(
            &HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
        ))
    }

    #[test]
    fn no_header_or_nothing_supported_is_english() {
        assert_eq!(accept_language(None), Lang::En);
        assert_eq!(accept(""), Lang::En);
        assert_eq!(accept("de"), Lang::En);
        assert_eq!(accept("de-DE, ja;q=0.9"), Lang::En);
    }

    #[test]
    fn the_primary_subtag_matches_in_any_case() {
        assert_eq!(accept("fr"), Lang::Fr);
        assert_eq!(accept("fr-CA"), Lang::Fr);
        assert_eq!(accept("FR-ca"), Lang::Fr);
        assert_eq!(accept("de-DE, fr-CH;q=0.8, en;q=0.5"), Lang::Fr);
        assert_eq!(Lang::from_tag("fr-Latn-FR"), Some(Lang::Fr));
        assert_eq!(Lang::from_tag("fre"), None);
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(accept("en;q=0.5, fr;q=0.9"), Lang::Fr);
        assert_eq!(accept("fr;q=0.5, en"), Lang::En);
        assert_eq!(
            accept("fr;Q=0.95, en;q=0.950"),
            Lang::Fr,
            "equal: the first named"
        );
        assert_eq!(accept("en;q=0.950, fr;q=0.95"), Lang::En);
        assert_eq!(accept("fr ; q=1.0 , en"), Lang::Fr);
        assert_eq!(accept("fr;q=0, en;q=0.1"), Lang::En);
        assert_eq!(accept("fr;q=0"), Lang::En, "refused: English by default");
        assert_eq!(accept("fr-CA;q=0.2, fr;q=0.7, en;q=0.5"), Lang::Fr);
    }

    #[test]
    fn the_wildcard_stands_for_the_languages_not_named() {
        assert_eq!(accept("*"), Lang::En);
        assert_eq!(accept("de, *;q=0.5"), Lang::En);
        assert_eq!(accept("en;q=0, *"), Lang::Fr);
        assert_eq!(accept("*;q=0.5, fr;q=0.6"), Lang::Fr);
        assert_eq!(accept("*;q=0"), Lang::En);
    }

    #[test]
    fn malformed_ranges_are_skipped() {
        assert_eq!(accept("fr;q=2, en;q=0.3"), Lang::En, "q above 1");
        assert_eq!(accept("fr;q=0.1234, en;q=0.3"), Lang::En, "four decimals");
        assert_eq!(accept("fr;q=abc, en;q=0.3"), Lang::En);
        assert_eq!(accept("fr;q, en;q=0.3"), Lang::En);
        assert_eq!(accept("f_r, en;q=0.3, fr-;q=1"), Lang::En);
        assert_eq!(accept(",,,;;;==, fr"), Lang::Fr);
        assert_eq!(accept("toolongtag, fr"), Lang::Fr);
        assert_eq!(accept("en;q=1.001, fr;q=0.5"), Lang::Fr);
        // Not visible ASCII: the whole header is unreadable.
        let opaque = HeaderValue::from_bytes(b"fr\xff").unwrap();
        assert_eq!(accept_language(Some(&opaque)), Lang::En);
    }

    #[test]
    fn huge_headers_are_looked_at_only_so_far() {
        let mut v = "de;q=0.9, ".repeat(10_000);
        v.push_str("fr");
        assert_eq!(accept(&v), Lang::En, "fr is beyond the first ranges");
        let v = format!("fr, {}", "x".repeat(100_000));
        assert_eq!(accept(&v), Lang::Fr);
    }

    #[test]
    fn ui_locales_keep_their_order_and_skip_what_is_unknown() {
        assert_eq!(UiLocales::parse("fr en").first_supported(), Some(Lang::Fr));
        assert_eq!(UiLocales::parse("en fr").first_supported(), Some(Lang::En));
        assert_eq!(
            UiLocales::parse("de-DE fr-CA en").first_supported(),
            Some(Lang::Fr)
        );
        assert_eq!(UiLocales::parse("de ja").first_supported(), None);
        assert_eq!(UiLocales::parse("").first_supported(), None);
        assert_eq!(
            UiLocales::parse("<script> fr").first_supported(),
            Some(Lang::Fr)
        );
        assert_eq!(UiLocales::parse("  fr\ten  ").0, vec!["fr", "en"]);
    }

    #[test]
    fn ui_locales_keep_a_few_well_formed_tags() {
        let many = format!("{} fr", "de ".repeat(1000));
        let u = UiLocales::parse(&many);
        assert_eq!(u.0.len(), MAX_TAGS);
        assert_eq!(u.first_supported(), None, "fr is beyond the tags kept");
        let long = format!("{} fr", "a".repeat(5000));
        assert_eq!(UiLocales::parse(&long).0, vec!["fr"]);
    }

    #[test]
    fn ui_locales_are_stored_as_the_string() {
        let u = UiLocales::parse("de-DE fr");
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, "\"de-DE fr\"");
        let back: UiLocales = serde_json::from_str(&json).unwrap();
        assert_eq!(back, u);
        let junk: UiLocales = serde_json::from_str("\"fr <x> en\"").unwrap();
        assert_eq!(junk.0, vec!["fr", "en"]);
    }
}
