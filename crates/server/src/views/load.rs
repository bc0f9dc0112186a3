//! Reading `templates_dir` and checking the templates at start-up: which
//! files replace what, compiling, and rendering every page with its
//! samples. Every refusal is a [`LoadError`] naming the file and the
//! problem on one line.

use std::{
    io,
    path::{Path, PathBuf},
};

use tera::Tera;

use super::{
    builtin::{PASSKEY_SCRIPT_NAME, STYLESHEET_NAME, TEMPLATES},
    samples::PAGES,
};

/// Why the templates cannot be used. `Display` is the start-up error.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("templates_dir {}: cannot read it: {source}", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error("templates_dir: cannot read {}: {source}", file.display())]
    File { file: PathBuf, source: io::Error },
    /// A template file whose name is none of Gatehouse's: refused rather
    /// than ignored, since a misspelt name would otherwise leave the
    /// built-in page in place without a word.
    #[error(
        "templates_dir: {} is not one of Gatehouse's templates, so it would never be used; \
         the templates are {}, and the stylesheet {STYLESHEET_NAME}",
        file.display(), template_names()
    )]
    Unknown { file: PathBuf },
    /// A stylesheet, script or other asset that is not the stylesheet.
    #[error(
        "templates_dir: {} would never be used: only templates and {STYLESHEET_NAME} are read \
         from templates_dir; other files for the pages (images, fonts, more stylesheets) go in \
         assets_dir, served at /assets/",
        file.display()
    )]
    NotATemplate { file: PathBuf },
    #[error(
        "templates_dir: {} cannot be replaced: the pages' Content-Security-Policy allows the \
         built-in passkey script alone, by its hash",
        file.display()
    )]
    Script { file: PathBuf },
    #[error("{origin}: {problem}")]
    Compile { origin: String, problem: String },
    #[error(
        "{origin}: {page} does not render with the sample \"{sample}\": {problem} \
         (the variables of {page} are {variables})"
    )]
    Render {
        origin: String,
        page: &'static str,
        sample: &'static str,
        problem: String,
        variables: String,
    },
    #[error(
        "{origin}: {page} leaves out {what} (sample \"{sample}\"), without which the page does \
         not work; docs/branding.md lists what each page must show"
    )]
    Incomplete {
        origin: String,
        page: &'static str,
        sample: &'static str,
        what: String,
    },
}

fn template_names() -> String {
    TEMPLATES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `templates_dir` replaces.
#[derive(Default)]
pub(super) struct Overrides {
    /// Templates by their built-in name, in name order.
    pub templates: Vec<(&'static str, String)>,
    pub stylesheet: Option<String>,
}

/// Reads the top level of `dir`. A file named as a built-in template
/// replaces it, `gatehouse.css` the stylesheet. Other template-like files
/// (`.html`, `.htm`, `.css`, `.js`, `.tera`) are refused, since they would
/// never be used; anything else is ignored: names beginning with a dot
/// (editors' files, the `..data` links of a mounted Kubernetes ConfigMap),
/// subdirectories, a README. Symbolic links are followed.
pub(super) fn read_dir(dir: &Path) -> Result<Overrides, LoadError> {
    let dir_error = |source| LoadError::Dir {
        dir: dir.to_owned(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        // A name that is not UTF-8 is no template's.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    let mut found = Overrides::default();
    for name in names {
        let file = dir.join(&name);
        let read = || {
            std::fs::read_to_string(&file).map_err(|source| LoadError::File {
                file: file.clone(),
                source,
            })
        };
        if name.starts_with('.') || !file.is_file() {
            continue;
        }
        if let Some((builtin, _)) = TEMPLATES.iter().find(|(n, _)| *n == name) {
            found.templates.push((builtin, read()?));
        } else if name == STYLESHEET_NAME {
            found.stylesheet = Some(read()?);
        } else if name == PASSKEY_SCRIPT_NAME {
            return Err(LoadError::Script { file });
        } else {
            let ext = Path::new(&name)
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("html" | "htm" | "tera") => return Err(LoadError::Unknown { file }),
                Some("css" | "js") => return Err(LoadError::NotATemplate { file }),
                _ => tracing::debug!(file = %file.display(), "templates_dir: ignored"),
            }
        }
    }
    Ok(found)
}

/// Compiles the built-in templates with `overrides` in place of their
/// namesakes.
pub(super) fn compile(
    origin: &str,
    overrides: &[(&'static str, String)],
) -> Result<Tera, LoadError> {
    let merged = TEMPLATES.iter().map(|(name, builtin)| {
        let text = overrides
            .iter()
            .find(|(n, _)| n == name)
            .map_or(*builtin, |(_, t)| t.as_str());
        (*name, text)
    });
    let mut tera = Tera::default();
    // Tera's `get_env` would let a template show the process environment
    // (the key-encryption key, the database password) on a page: whoever
    // edits the templates need not see the server's secrets.
    tera.register_function(
        "get_env",
        |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
            Err(tera::Error::msg(
                "get_env is not available in Gatehouse's templates (the environment holds secrets)",
            ))
        },
    );
    // The pages' words: `t(key=...)` and `lang()` (crate::i18n).
    crate::i18n::register(&mut tera);
    tera.add_raw_templates(merged)
        .map_err(|e| LoadError::Compile {
            origin: origin.to_owned(),
            problem: one_line(&e),
        })?;
    Ok(tera)
}

/// Renders every page with each of its samples and checks that it shows
/// what it must and carries its script.
pub(super) fn check(origin: &str, tera: &Tera) -> Result<(), LoadError> {
    for page in PAGES {
        for (sample, value) in (page.samples)() {
            let ctx = tera::Context::from_value(value.clone()).map_err(|e| LoadError::Render {
                origin: origin.to_owned(),
                page: page.name,
                sample,
                problem: one_line(&e),
                variables: page.variables().join(", "),
            })?;
            // In every language: a template may branch on `lang()`.
            for lang in crate::i18n::Lang::ALL {
                let html =
                    crate::i18n::with_lang(lang, || tera.render(page.name, &ctx)).map_err(|e| {
                        LoadError::Render {
                            origin: origin.to_owned(),
                            page: page.name,
                            sample,
                            problem: format!("in {}: {}", lang.tag(), one_line(&e)),
                            variables: page.variables().join(", "),
                        }
                    })?;
                complete(origin, page, sample, &value, &html)?;
            }
        }
    }
    Ok(())
}

/// Whether a rendered page shows what its forms need and keeps its script.
fn complete(
    origin: &str,
    page: &super::PageSpec,
    sample: &'static str,
    value: &serde_json::Value,
    html: &str,
) -> Result<(), LoadError> {
    let incomplete = |what: String| LoadError::Incomplete {
        origin: origin.to_owned(),
        page: page.name,
        sample,
        what,
    };
    for var in page.shown {
        for text in texts(&value[*var]) {
            if !html.contains(text) && !html.contains(&tera::escape_html(text)) {
                return Err(incomplete(format!("the value of `{var}`")));
            }
        }
    }
    if let Some(script) = page.script {
        if !html.contains(&format!("<script>{script}</script>")) {
            return Err(incomplete(
                "its script, which must be exactly the built-in one between \
                 <script> and </script>"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// The non-empty texts of a value: a string, or each string of a list.
fn texts(v: &serde_json::Value) -> Vec<&str> {
    match v {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect()
}

/// A tera error with its causes, on one line: tera says which template
/// failed, its causes say why (the variable not found; for a parse error
/// pest's excerpt, whose `--> 3:13`, source line and `= expected ...` become
/// `line 3, column 13: `source`: expected ...`).
pub(super) fn one_line(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    let mut pieces: Vec<String> = Vec::new();
    for line in parts.iter().flat_map(|p| p.lines()).map(str::trim) {
        if line.is_empty() || line.chars().all(|c| matches!(c, '|' | '^' | '-' | ' ')) {
            continue;
        }
        let piece = if let Some(at) = line.strip_prefix("--> ") {
            match at.split_once(':') {
                Some((l, c)) => format!("line {l}, column {c}"),
                None => at.to_owned(),
            }
        } else if let Some((n, code)) = line.split_once(" | ") {
            if n.trim().chars().all(|c| c.is_ascii_digit()) {
                format!("`{}`", code.trim())
            } else {
                line.to_owned()
            }
        } else {
            line.strip_prefix("= ").unwrap_or(line).to_owned()
        };
        pieces.push(piece);
    }
    pieces.join(": ")
}
