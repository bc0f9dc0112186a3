//! The catalogues against each other, the templates and [`Msg`]; filling
//! in, plural forms and fallback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use super::catalogue::{placeholders, Catalogue, Entry};
use super::*;

fn own(lang: Lang) -> Catalogue {
    Catalogue::parse(lang.source()).unwrap_or_else(|e| panic!("{}: {e}", lang.tag()))
}

fn keys(c: &Catalogue) -> BTreeSet<String> {
    c.keys().map(str::to_owned).collect()
}

/// The placeholders of every form of `entry`.
fn names(entry: &Entry) -> BTreeSet<String> {
    entry
        .texts()
        .into_iter()
        .flat_map(placeholders)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_catalogue_has_exactly_the_english_keys() {
    let english = keys(&own(Lang::En));
    assert!(english.len() > 150, "{} keys", english.len());
    for lang in Lang::ALL.into_iter().skip(1) {
        let theirs = keys(&own(lang));
        let missing: Vec<_> = english.difference(&theirs).collect();
        let extra: Vec<_> = theirs.difference(&english).collect();
        assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
        assert!(
            extra.is_empty(),
            "{} has keys English has not: {extra:?}",
            lang.tag()
        );
    }
}

#[test]
fn translations_use_the_english_placeholders() {
    let english = own(Lang::En);
    for lang in Lang::ALL.into_iter().skip(1) {
        let theirs = own(lang);
        for key in english.keys() {
            let (Some(en), Some(other)) = (english.get(key), theirs.get(key)) else {
                continue;
            };
            let mut want = names(en);
            let mut got = names(other);
            // A plural form may leave the number out ("a minute").
            if matches!(en, Entry::Plural { .. }) || matches!(other, Entry::Plural { .. }) {
                want.remove("count");
                got.remove("count");
            }
            assert_eq!(want, got, "{} {key}", lang.tag());
        }
    }
}

#[test]
fn translations_are_not_english_left_in_place() {
    let english = own(Lang::En);
    let french = own(Lang::Fr);
    for key in english.keys() {
        assert_ne!(
            english.get(key),
            french.get(key),
            "fr {key} is the English text"
        );
    }
}

/// Each `t(key="..", name=..)` call in a template: the key and the names
/// of its arguments.
fn calls(source: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("t(key=\"") {
        let after = &rest[at + "t(key=\"".len()..];
        let end = after.find('"').expect("the key's closing quote");
        let key = after[..end].to_owned();
        let close = after.find(')').expect("the call's closing parenthesis");
        let args = after[end + 1..close]
            .split(',')
            .filter_map(|a| a.split_once('='))
            .map(|(name, _)| name.trim().to_owned())
            .collect();
        found.push((key, args));
        rest = &after[close..];
    }
    found
}

#[test]
fn every_key_a_template_uses_is_in_english_with_its_arguments() {
    let english = own(Lang::En);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
    let mut used = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if ext != "html" && ext != "js" {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (key, args) in calls(&source) {
            used += 1;
            let entry = english
                .get(&key)
                .unwrap_or_else(|| panic!("{}: {key} is not in en.toml", path.display()));
            // The passkey script fills `{error}` in the browser.
            let mut wanted = names(entry);
            if key == "passkey.not_used" {
                wanted.remove("error");
            }
            let missing: Vec<_> = wanted.difference(&args).collect();
            assert!(
                missing.is_empty(),
                "{}: {key} needs {missing:?}",
                path.display()
            );
        }
        // No text of its own is left in a page: what a person reads comes
        // from the catalogue (the brand name excepted).
        if ext == "html" {
            let text = visible_text(&source);
            assert!(
                text.iter().all(|t| t == "Gatehouse"),
                "{}: untranslated text {text:?}",
                path.display()
            );
        }
    }
    assert!(used > 100, "{used} calls found");
}

/// The text between tags outside `{{ }}`, `{% %}` and scripts (and the
/// block that names the card's CSS class).
fn visible_text(html: &str) -> Vec<String> {
    let mut s = html.to_owned();
    let hidden = [
        ("{% block card_class %}", "{% endblock card_class %}"),
        ("<script", "</script>"),
        ("{{", "}}"),
        ("{%", "%}"),
        ("<", ">"),
    ];
    for (open, close) in hidden {
        while let Some(a) = s.find(open) {
            let Some(b) = s[a..].find(close) else { break };
            s.replace_range(a..a + b + close.len(), " ");
        }
    }
    s.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_message_of_the_server_is_in_english_with_its_arguments() {
    let english = own(Lang::En);
    for (key, fields) in Msg::ALL {
        let entry = english
            .get(key)
            .unwrap_or_else(|| panic!("{key} is not in en.toml"));
        let fields: BTreeSet<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        for lang in Lang::ALL {
            let Some(e) = own(lang).get(key).cloned() else {
                continue;
            };
            let missing: Vec<_> = names(&e).difference(&fields).cloned().collect();
            assert!(
                missing.is_empty(),
                "{} {key}: no field for {missing:?}",
                lang.tag()
            );
        }
        let mut used = names(entry);
        if matches!(entry, Entry::Plural { .. }) {
            used.insert("count".to_owned());
        }
        let unused: Vec<_> = fields.difference(&used).collect();
        assert!(unused.is_empty(), "{key}: fields {unused:?} fill nothing");
    }
}

#[test]
fn placeholders_are_filled_and_plurals_chosen() {
    let m = Msg::TooManyCodes { count: 30 };
    assert_eq!(
        m.in_lang(Lang::En),
        "Too many wrong codes. Try again in 30 seconds."
    );
    assert_eq!(
        Msg::TooManyCodes { count: 1 }.in_lang(Lang::En),
        "Too many wrong codes. Try again in 1 second."
    );
    assert_eq!(
        m.in_lang(Lang::Fr),
        "Trop de codes erronés. Réessayez dans 30\u{a0}secondes."
    );
    assert_eq!(
        Msg::TooManyCodes { count: 0 }.in_lang(Lang::Fr),
        "Trop de codes erronés. Réessayez dans 0\u{a0}seconde."
    );
    assert_eq!(
        Msg::Device {
            browser: "Firefox".into(),
            os: "Linux".into()
        }
        .in_lang(Lang::Fr),
        "Firefox sous Linux"
    );
    assert_eq!(m.to_string(), m.in_lang(Lang::En), "Display is English");
}

#[test]
fn what_is_not_a_placeholder_stays_as_written() {
    let c = Catalogue::parse(r#"a = "{x} {y} {} {z {x}} }{ {x""#).unwrap();
    let entry = c.get("a").unwrap();
    let out = entry.render(|n| n == 1, &[("x", Arg::from("1")), ("z", Arg::from("Z"))]);
    assert_eq!(out, "1 {y} {} {z 1} }{ {x");
    assert_eq!(placeholders("{a} {b_2} {} {c d}"), vec!["a", "b_2"]);
}

#[test]
fn a_missing_translation_falls_back_to_english() {
    let english = own(Lang::En);
    let partial = Catalogue::parse("[login]\ntitle = \"Anmelden\"").unwrap();
    let merged = english.clone().overlay(partial);
    let text = |c: &Catalogue, k: &str| c.get(k).unwrap().render(|n| n == 1, &[]);
    assert_eq!(text(&merged, "login.title"), "Anmelden");
    assert_eq!(text(&merged, "login.submit"), "Sign in");
    // A key nowhere at all shows as itself: never a panic or an error.
    assert_eq!(translate(Lang::Fr, "no.such.key", &[]), "no.such.key");
}

#[test]
fn catalogues_that_cannot_be_read_are_refused() {
    assert!(Catalogue::parse("a = ").is_err());
    assert!(Catalogue::parse("a = 1").is_err());
    assert!(Catalogue::parse("a = { one = 1, other = \"x\" }").is_err());
    let only_other = Catalogue::parse("a = { other = \"{count} x\" }").unwrap();
    assert_eq!(
        only_other
            .get("a")
            .unwrap()
            .render(|n| n == 1, &[("count", Arg::Count(1))]),
        "1 x"
    );
}

#[test]
fn templates_translate_in_the_request_language_and_escape() {
    let mut tera = tera::Tera::default();
    register(&mut tera);
    tera.add_raw_template(
        "t.html",
        r#"<html lang="{{ lang() }}">{{ t(key="login.title") }}|{{ t(key="consent.remembered", client=name) }}|{{ t(key="sign_in_again.lead", count=1) }}"#,
    )
    .unwrap();
    let mut ctx = tera::Context::new();
    ctx.insert("name", "<b>App</b>");
    let en = tera.render("t.html", &ctx).unwrap();
    assert!(en.starts_with("<html lang=\"en\">Sign in|"), "{en}");
    assert!(
        en.contains("when &lt;b&gt;App&lt;&#x2F;b&gt; needs"),
        "{en}"
    );
    assert!(en.contains("within the last minute."), "{en}");
    let fr = with_lang(Lang::Fr, || tera.render("t.html", &ctx).unwrap());
    assert!(fr.starts_with("<html lang=\"fr\">Connexion|"), "{fr}");
    assert!(fr.contains("lorsque &lt;b&gt;App"), "{fr}");
    assert!(fr.contains("moins d&#x27;une minute"), "{fr}");
    // A template naming no key is a render error (found by the tests and
    // at start-up), not a panic.
    tera.add_raw_template("bad.html", "{{ t() }}").unwrap();
    assert!(tera.render("bad.html", &ctx).is_err());
}

#[test]
fn the_catalogues_load_at_start_up() {
    let tags: Vec<&str> = Lang::ALL.iter().map(|l| l.tag()).collect();
    assert_eq!(tags, ["en", "fr"]);
    assert!(init().is_ok());
}
