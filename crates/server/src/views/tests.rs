//! The templates' start-up check: the built-in ones pass it; the
//! operator's replace them by name, and every way of breaking a page is
//! refused with a message naming the file and the problem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tera::Context;

use super::{
    builtin::{STYLESHEET, TEMPLATES},
    samples, LoadError, Views, PAGES, PASSKEY_SCRIPT,
};

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
struct Dir(PathBuf);

impl Dir {
    fn with(files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("gatehouse-views-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Dir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn refused(files: &[(&str, &str)]) -> String {
    let dir = Dir::with(files);
    let e = Views::load(Some(dir.path())).expect_err("refused");
    let message = e.to_string();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

fn sample(page: &str) -> Context {
    let spec = samples::spec(page).unwrap();
    Context::from_value((spec.samples)().remove(0).1).unwrap()
}

/// A login page replacing the built-in one: everything the built-in one's
/// form needs, and a mark to recognise it by.
const LOGIN: &str = r#"{% extends "base.html" %}
{% block content %}<h1 id="branded">Welcome to Example Corp</h1>
{% if error %}<p role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="tx" value="{% if tx %}{{ tx }}{% endif %}">
<input name="username" value="{{ username }}"><input name="password" type="password">
<button>Sign in</button></form>{% endblock content %}"#;

#[test]
fn the_built_in_templates_pass_the_start_up_check() {
    let views = Views::builtin().unwrap();
    assert!(views.replaced().is_empty());
    // Every sample of every page renders, and shows what it must.
    for page in PAGES {
        for (label, value) in (page.samples)() {
            let html = views
                .render(page.name, &Context::from_value(value).unwrap())
                .unwrap_or_else(|| panic!("{} with {label}", page.name));
            assert!(html.contains("</html>"), "{}: {html}", page.name);
        }
    }
    assert_eq!(&views.stylesheet()[..], STYLESHEET.as_bytes());
}

#[test]
fn every_template_but_base_is_a_page_with_samples() {
    let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
    for page in PAGES {
        assert!(names.contains(&page.name), "{} is a template", page.name);
        assert!(!(page.samples)().is_empty(), "{} has samples", page.name);
        for var in page.shown {
            assert!(
                page.variables().iter().any(|v| v == var),
                "{}: `{var}` is a variable",
                page.name
            );
        }
    }
    for name in names {
        assert!(
            name == "base.html" || samples::spec(name).is_some(),
            "{name} has a spec in views/samples.rs"
        );
    }
}

#[test]
fn a_context_unlike_every_sample_is_noticed() {
    let mut ctx = (samples::spec("login.html").unwrap().samples)().remove(0).1;
    assert!(samples::matches_a_sample("login.html", &ctx));
    ctx["new_variable"] = serde_json::json!(1);
    assert!(!samples::matches_a_sample("login.html", &ctx));
    ctx.as_object_mut().unwrap().remove("new_variable");
    ctx.as_object_mut().unwrap().remove("busy");
    assert!(!samples::matches_a_sample("login.html", &ctx));
}

#[test]
fn a_file_replaces_its_namesake_and_the_stylesheet() {
    let dir = Dir::with(&[
        ("login.html", LOGIN),
        ("gatehouse.css", "body { background: #123456; }"),
        // Ignored: not templates, or hidden.
        ("README.md", "# our templates"),
        (".login.html.swp", "{{ broken"),
        ("logo.png.bak", "x"),
    ]);
    std::fs::create_dir(dir.path().join("drafts")).unwrap();
    std::fs::write(dir.path().join("drafts").join("login.html"), "{{ broken").unwrap();
    let views = Views::load(Some(dir.path())).unwrap();
    assert_eq!(views.replaced(), ["login.html"]);
    assert_eq!(&views.stylesheet()[..], b"body { background: #123456; }");
    let login = views.render("login.html", &sample("login.html")).unwrap();
    assert!(login.contains("Welcome to Example Corp"), "{login}");
    // The built-in base still frames it; other pages are the built-in ones.
    assert!(login.contains("/assets/gatehouse.css"), "{login}");
    let consent = views
        .render("consent.html", &sample("consent.html"))
        .unwrap();
    assert!(consent.contains("Allow access?"), "{consent}");
}

#[test]
fn a_replaced_base_frames_every_page() {
    let base = r#"<!doctype html><html lang="en"><head><title>{% block title %}{% endblock title %}</title>
<link rel="stylesheet" href="/assets/gatehouse.css"></head>
<body><img src="/assets/logo.svg" alt="Example Corp">{% block content %}{% endblock content %}</body></html>"#;
    let views = Views::load(Some(Dir::with(&[("base.html", base)]).path())).unwrap();
    for page in PAGES.iter().filter(|p| p.name != "form_post.html") {
        let html = views.render(page.name, &sample(page.name)).unwrap();
        assert!(html.contains("/assets/logo.svg"), "{}: {html}", page.name);
    }
}

#[test]
fn unknown_files_that_look_like_templates_are_refused() {
    let e = refused(&[("logn.html", LOGIN)]);
    assert!(e.contains("logn.html"), "{e}");
    assert!(e.contains("is not one of Gatehouse's templates"), "{e}");
    assert!(e.contains("login.html"), "lists the names: {e}");
    let e = refused(&[("fonts.css", "")]);
    assert!(e.contains("fonts.css") && e.contains("assets_dir"), "{e}");
    let e = refused(&[("passkey.js", "alert(1)")]);
    assert!(
        e.contains("passkey.js") && e.contains("cannot be replaced"),
        "{e}"
    );
    let e = Views::load(Some(Path::new("/nonexistent-gatehouse-templates"))).unwrap_err();
    assert!(matches!(e, LoadError::Dir { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent-gatehouse-templates"));
}

#[test]
fn a_template_that_does_not_compile_is_refused_with_where() {
    let e = refused(&[(
        "login.html",
        "{% extends \"base.html\" %}\n{% block content %}\n<p>{{ csrf </p>\n{% endblock content %}",
    )]);
    assert!(e.starts_with("templates_dir "), "{e}");
    assert!(e.contains("login.html"), "{e}");
    assert!(e.contains("line 3, column 13"), "the line: {e}");
    let e = refused(&[("consent.html", "{% extends \"nothing.html\" %}")]);
    assert!(
        e.contains("consent.html") && e.contains("nothing.html"),
        "{e}"
    );
}

#[test]
fn a_variable_the_page_does_not_have_is_refused() {
    let e = refused(&[(
        "consent.html",
        "{% extends \"base.html\" %}{% block content %}{{ csrf }}{{ tx }}{{ client_name }}{{ user.email }}{% endblock content %}",
    )]);
    assert!(e.contains("consent.html does not render"), "{e}");
    assert!(e.contains("user.email"), "names the variable: {e}");
    assert!(
        e.contains("the variables of consent.html are client_host, client_name, csrf, device_user_code, scopes, tx, username"),
        "{e}"
    );
    // In a replaced base.html, a variable some pages lack.
    let e = refused(&[(
        "base.html",
        "<html>{{ username }}{% block content %}{% endblock content %}</html>",
    )]);
    assert!(
        e.contains("does not render") && e.contains("username"),
        "{e}"
    );
    // A value used the wrong way: `client_host` is null without an app.
    let e = refused(&[(
        "login.html",
        &LOGIN.replace("<h1 id=", "{{ client_host | upper }}<h1 id="),
    )]);
    assert!(e.contains("login.html does not render"), "{e}");
    assert!(
        e.contains("opened directly while busy"),
        "names the sample: {e}"
    );
}

#[test]
fn a_template_cannot_read_the_environment() {
    let e = refused(&[(
        "error.html",
        "{% extends \"base.html\" %}{% block content %}{{ message }}{{ get_env(name=\"HOME\") }}{% endblock content %}",
    )]);
    assert!(e.contains("error.html does not render"), "{e}");
    assert!(e.contains("get_env is not available"), "{e}");
}

#[test]
fn a_page_that_leaves_out_what_its_form_needs_is_refused() {
    let e = refused(&[("login.html", &LOGIN.replace("{{ csrf }}", ""))]);
    assert!(
        e.contains("login.html leaves out the value of `csrf`"),
        "{e}"
    );
    let e = refused(&[("login.html", &LOGIN.replace("{{ tx }}", ""))]);
    assert!(e.contains("`tx`"), "{e}");
    let e = refused(&[(
        "recovery_codes.html",
        "{% extends \"base.html\" %}{% block content %}{{ codes.0 }} <a href=\"{{ next }}\">on</a>{% endblock content %}",
    )]);
    assert!(
        e.contains("recovery_codes.html leaves out the value of `codes`"),
        "{e}"
    );
}

#[test]
fn every_language_is_checked_at_start_up() {
    // A page that drops the CSRF token, or breaks, only in French.
    let fr_only = LOGIN.replace(
        "{{ csrf }}",
        "{% if lang() != \"fr\" %}{{ csrf }}{% endif %}",
    );
    let e = refused(&[("login.html", &fr_only)]);
    assert!(e.contains("leaves out the value of `csrf`"), "{e}");
    let broken = LOGIN.replace(
        "{{ csrf }}",
        "{{ csrf }}{% if lang() == \"fr\" %}{{ nowhere.field }}{% endif %}",
    );
    let e = refused(&[("login.html", &broken)]);
    assert!(e.contains("in fr:"), "{e}");
}

#[test]
fn the_pages_with_a_script_must_keep_it_exactly() {
    let builtin = TEMPLATES
        .iter()
        .find(|(n, _)| *n == "passkey.html")
        .unwrap()
        .1;
    // A restyled passkey page keeping the script works.
    let restyled = builtin.replace(
        "<h1>{{ title }}</h1>",
        "<h1 class=\"ours\">{{ title }}</h1>",
    );
    let views = Views::load(Some(Dir::with(&[("passkey.html", &restyled)]).path())).unwrap();
    let html = views
        .render("passkey.html", &sample("passkey.html"))
        .unwrap();
    assert!(html.contains(&format!("<script>{PASSKEY_SCRIPT}</script>")));
    // Escaped, or changed, or gone: refused.
    for broken in [
        builtin.replace("{{ script | safe }}", "{{ script }}"),
        builtin.replace("{{ script | safe }}", "{{ script | safe }}\n"),
        builtin.replace("<script>{{ script | safe }}</script>", ""),
    ] {
        let e = refused(&[("passkey.html", &broken)]);
        assert!(e.contains("passkey.html leaves out its script"), "{e}");
    }
    let e = refused(&[(
        "form_post.html",
        "<form method=\"post\" action=\"{{ action }}\"></form><script>document.forms[0].submit()</script>",
    )]);
    assert!(e.contains("form_post.html leaves out its script"), "{e}");
}

#[test]
fn a_replacement_failing_at_run_time_falls_back_to_the_built_in_page() {
    // Passes every sample, fails for one username no sample has.
    let odd = LOGIN.replace(
        "<h1 id=\"branded\">",
        "{% if username == \"mallory\" %}{{ no_such_variable }}{% endif %}<h1 id=\"branded\">",
    );
    let views = Views::load(Some(Dir::with(&[("login.html", &odd)]).path())).unwrap();
    let mut ctx = sample("login.html");
    assert!(views
        .render("login.html", &ctx)
        .unwrap()
        .contains("id=\"branded\""));
    ctx.insert("username", "mallory");
    let html = views.render("login.html", &ctx).unwrap();
    assert!(!html.contains("id=\"branded\""), "{html}");
    assert!(
        html.contains("<h1>Sign in</h1>"),
        "the built-in page: {html}"
    );
}

#[test]
fn pages_allow_images_and_fonts_from_this_origin_only() {
    let r = super::page(
        axum::http::StatusCode::OK,
        "consent.html",
        &sample("consent.html"),
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert_eq!(
        csp,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; script-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    // The sign-in page runs its autofill script and may fetch from here.
    let r = super::page(
        axum::http::StatusCode::OK,
        "login.html",
        &sample("login.html"),
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("; connect-src 'self';"),
        "{csp}"
    );
    let r = super::page(
        axum::http::StatusCode::OK,
        "passkey.html",
        &sample("passkey.html"),
    );
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("font-src 'self'"), "{csp}");
}

/// docs/branding.md names every template and every variable each page
/// gets, so the guide stays true when a page changes.
#[test]
fn the_branding_guide_lists_every_template_and_variable() {
    let guide = include_str!("../../../../docs/branding.md");
    for (name, _) in TEMPLATES {
        assert!(guide.contains(&format!("`{name}`")), "{name}");
    }
    for page in PAGES {
        let start = guide
            .find(&format!("### `{}`", page.name))
            .unwrap_or_else(|| panic!("a section for {}", page.name));
        let section = &guide[start..];
        let section = &section[..section[4..].find("\n### ").map_or(section.len(), |i| i + 4)];
        for var in page.variables() {
            assert!(
                section.contains(&format!("`{var}`")),
                "docs/branding.md, {}: `{var}`",
                page.name
            );
        }
    }
}
