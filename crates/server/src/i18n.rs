//! The languages of the pages: a message catalogue per language
//! (`locales/<tag>.toml`, embedded in the binary and parsed once), the
//! language each request is answered in, and the Tera functions the
//! templates translate with (`{{ t(key="login.title") }}`, `{{ lang() }}`).
//!
//! **Which language.** A request's language is chosen once when it
//! arrives ([`scope`], from `Accept-Language`) and refined when the
//! request turns out to belong to a sign-in whose authorization request
//! carried `ui_locales` ([`prefer`]: at `/authorize`, and wherever a page
//! loads the authorization transaction), so every page of that sign-in
//! speaks the language the client asked for. English when nothing matches.
//!
//! **Why a task-local.** Error pages are rendered far from the handler that
//! knows the language (`AppError` turns into a response in
//! `http/error.rs`), and Tera's functions see only their arguments. As
//! Django's and Rails's request locale do, the language lives for the
//! length of one request (a `tokio` task-local the middleware sets), so no
//! handler threads it through and no page can be rendered in another.
//! Outside a request (unit tests, start-up) it is English.
//!
//! **Fallback.** Every catalogue is merged over English when it is
//! loaded, so a key a translation lacks shows in English; a key that is
//! nowhere shows as itself and is logged, never a panic or a 500.

mod catalogue;
mod messages;
mod negotiate;

use std::{cell::Cell, collections::HashMap, sync::OnceLock};

use axum::{extract::Request, http::header, middleware::Next, response::Response};

use self::catalogue::Catalogue;
pub use self::{
    catalogue::{Arg, CatalogueError},
    messages::Msg,
    negotiate::{accept_language, UiLocales},
};

/// A language the pages are written in. Adding one: its catalogue in
/// `locales/`, a variant here, its tag and source below (docs/languages.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// Every language, English (the reference and the fallback) first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The BCP 47 tag (`<html lang>`, `ui_locales_supported`).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The catalogue's TOML text.
    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../../../locales/en.toml"),
            Lang::Fr => include_str!("../../../locales/fr.toml"),
        }
    }

    /// The language a BCP 47 tag or language range asks for, matched by
    /// its primary subtag (`fr-CA` is French), in any case.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split('-').next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.tag().eq_ignore_ascii_case(primary))
    }

    /// The plural form of `n` (CLDR plural rules for cardinals): English
    /// says "1 second", French also "0 seconde".
    fn is_one(self, n: i64) -> bool {
        match self {
            Lang::En => n == 1,
            Lang::Fr => n == 0 || n == 1,
        }
    }
}

/// The catalogues, each merged over English, in [`Lang::ALL`] order.
struct Catalogues(Vec<Catalogue>);

static CATALOGUES: OnceLock<Catalogues> = OnceLock::new();

fn load() -> Result<Catalogues, CatalogueError> {
    let english = Catalogue::parse(Lang::En.source())?;
    let mut all = vec![english.clone()];
    for lang in Lang::ALL.into_iter().skip(1) {
        let own = Catalogue::parse(lang.source())
            .map_err(|e| CatalogueError(format!("{}: {}", lang.tag(), e.0)))?;
        all.push(english.clone().overlay(own));
    }
    Ok(Catalogues(all))
}

/// Parses the catalogues now (at start-up), so a broken one stops the
/// server instead of showing keys on every page.
pub fn init() -> Result<(), CatalogueError> {
    let loaded = load()?;
    let _ = CATALOGUES.set(loaded);
    Ok(())
}

fn catalogue(lang: Lang) -> Option<&'static Catalogue> {
    let all = CATALOGUES.get_or_init(|| {
        // Embedded and checked by the tests: a failure here is a build
        // defect; every page then shows its keys, and this says why.
        load().unwrap_or_else(|e| {
            tracing::error!(error = %e.0, "message catalogues failed to load");
            Catalogues(Vec::new())
        })
    });
    let i = Lang::ALL.iter().position(|l| *l == lang)?;
    all.0.get(i)
}

/// The message `key` in `lang` with its placeholders filled from `args`.
pub fn translate(lang: Lang, key: &str, args: &[(&str, Arg)]) -> String {
    match catalogue(lang).and_then(|c| c.get(key)) {
        Some(entry) => entry.render(|n| lang.is_one(n), args),
        None => {
            tracing::warn!(key, lang = lang.tag(), "no message for this key");
            key.to_owned()
        }
    }
}

tokio::task_local! {
    /// The language of the request being answered.
    static CURRENT: Cell<Lang>;
}

/// The language of the request being answered (English outside one).
pub fn current() -> Lang {
    CURRENT.try_with(Cell::get).unwrap_or_default()
}

/// The sign-in's `ui_locales` (OIDC Core 3.1.2.1) wins over the browser's
/// `Accept-Language` when it names a language the pages are written in.
pub fn prefer(ui_locales: &UiLocales) {
    if let Some(lang) = ui_locales.first_supported() {
        let _ = CURRENT.try_with(|c| c.set(lang));
    }
}

/// Middleware: answers the request in the language its `Accept-Language`
/// asks for (until [`prefer`] says otherwise).
pub async fn scope(req: Request, next: Next) -> Response {
    let lang = accept_language(req.headers().get(header::ACCEPT_LANGUAGE));
    CURRENT.scope(Cell::new(lang), next.run(req)).await
}

/// Runs `f` as if answering a request in `lang` (the start-up check of
/// the templates renders every page in every language; tests).
pub fn with_lang<T>(lang: Lang, f: impl FnOnce() -> T) -> T {
    CURRENT.sync_scope(Cell::new(lang), f)
}

/// The template function `t(key="...", name=value ...)`: the message in
/// the request's language. Its output is escaped like any other value.
fn t(args: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let Some(key) = args.get("key").and_then(tera::Value::as_str) else {
        return Err(tera::Error::msg("t() needs key=\"section.name\""));
    };
    let filled: Vec<(&str, Arg)> = args
        .iter()
        .filter(|(name, _)| name.as_str() != "key")
        .map(|(name, value)| (name.as_str(), Arg::from(value)))
        .collect();
    Ok(tera::Value::String(translate(current(), key, &filled)))
}

/// The template function `lang()`: the request's language tag, for
/// `<html lang>`.
fn lang(_: &HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    Ok(tera::Value::String(current().tag().to_owned()))
}

/// Makes `t()` and `lang()` available to `tera`'s templates.
pub fn register(tera: &mut tera::Tera) {
    tera.register_function("t", t);
    tera.register_function("lang", lang);
}

#[cfg(test)]
mod tests;
