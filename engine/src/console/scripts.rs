//! The scripts page: every script this engine runs (`dialog.script` for
//! inbound calls, and each campaign's script), read from disk as it is now,
//! with the validator's problems, the state graph as SVG
//! ([`super::graph_svg`]), and a button that runs its conversation tests
//! ([`voxbridge_dialog::convtest::run_file`], what `voxbridge test-dialog`
//! runs). A script's tests are the `*.yaml` files in the `tests/` folder
//! beside it whose `script:` names it (the layout of `fixtures/scripts/`).
//! A file that fails validation here is one the engine refused to reload:
//! calls keep the last good version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use voxbridge_dialog::convtest::{self, TestResult};
use voxbridge_dialog::diag::Problem;

use super::auth::Identity;
use super::pages::layout;
use super::routes::{form_body, html, no_csrf, refused};
use super::{Auth, Console};

/// What one script looks like now.
#[derive(Debug, Clone)]
pub struct ScriptView {
    pub path: PathBuf,
    /// Who runs it: "inbound calls" or "campaign NAME".
    pub used_by: Vec<String>,
    /// The script's `name`, once it parsed.
    pub name: Option<String>,
    pub problems: Vec<Problem>,
    /// The state graph, when the script parsed.
    pub svg: Option<String>,
    pub tests: Vec<PathBuf>,
}

/// The results of one run of a script's tests: per file, its results or
/// why it could not run.
pub type Run = Vec<(PathBuf, Result<Vec<TestResult>, Vec<Problem>>)>;

/// The scripts the engine runs, each once, inbound first.
fn script_paths(console: &Console) -> Vec<(PathBuf, Vec<String>)> {
    let mut out: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let mut add = |path: PathBuf, who: String| {
        let key = std::fs::canonicalize(&path).unwrap_or(path);
        match out.iter_mut().find(|(p, _)| *p == key) {
            Some((_, users)) => users.push(who),
            None => out.push((key, vec![who])),
        }
    };
    if let Some(p) = &console.script {
        add(p.clone(), "inbound calls".into());
    }
    if let Some(m) = &console.campaigns {
        match m.list() {
            Ok(all) => {
                for c in all {
                    match crate::campaign::format::Campaign::load(&c.file) {
                        Ok(file) => add(file.script, format!("campaign {}", c.name)),
                        Err(e) => {
                            tracing::warn!(campaign = %c.name, error = %e, "console scripts: campaign file unreadable")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "console scripts: campaigns unreadable"),
        }
    }
    out
}

/// The test files beside `script` that test it.
pub fn tests_for(script: &Path) -> Vec<PathBuf> {
    let Some(dir) = script.parent().map(|d| d.join("tests")) else {
        return Vec::new();
    };
    let Ok(files) = convtest::collect(std::slice::from_ref(&dir)) else {
        return Vec::new();
    };
    let me = std::fs::canonicalize(script).unwrap_or_else(|_| script.to_path_buf());
    files
        .into_iter()
        .filter(|f| {
            let Ok(text) = std::fs::read_to_string(f) else {
                return false;
            };
            #[derive(Deserialize)]
            struct Head {
                script: PathBuf,
            }
            // Only the `script:` key matters here; the runner reads the rest.
            let Ok(head) = serde_saphyr::from_str::<Head>(&text) else {
                return false;
            };
            let target = f.parent().unwrap_or(Path::new(".")).join(head.script);
            std::fs::canonicalize(target).is_ok_and(|t| t == me)
        })
        .collect()
}

/// Read, validate and draw one script.
pub fn view(path: &Path, used_by: Vec<String>, index: usize) -> ScriptView {
    let tests = tests_for(path);
    match voxbridge_dialog::load::load_file(path) {
        Ok(loaded) => {
            let problems = voxbridge_dialog::validate::validate(&loaded, None);
            let name = loaded.script.name.clone();
            let graph = voxbridge_dialog::graph::model(&loaded);
            let svg = super::graph_svg::render(&format!("graph-{index}"), &name, &graph);
            ScriptView {
                path: path.to_path_buf(),
                used_by,
                name: Some(name),
                problems,
                svg: Some(svg),
                tests,
            }
        }
        Err(problems) => ScriptView {
            path: path.to_path_buf(),
            used_by,
            name: None,
            problems,
            svg: None,
            tests,
        },
    }
}

/// Every script, read off the async threads.
async fn views(console: Arc<Console>) -> Result<Vec<ScriptView>, String> {
    tokio::task::spawn_blocking(move || {
        script_paths(&console)
            .into_iter()
            .enumerate()
            .map(|(i, (p, who))| view(&p, who, i))
            .collect()
    })
    .await
    .map_err(|e| e.to_string())
}

pub async fn page(State(console): State<Arc<Console>>, auth: Auth) -> Response {
    match views(console).await {
        Ok(all) => html(render(&auth.identity, auth.csrf_field(), &all, None)),
        Err(e) => {
            tracing::warn!(error = %e, "console scripts: failed");
            refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Scripts unavailable",
                "Reading the scripts failed.",
            )
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct TestForm {
    #[serde(default)]
    csrf: Option<String>,
    /// The script's place on the page (never a path from the request).
    #[serde(default)]
    script: Option<usize>,
}

/// `POST /console/scripts/test`: run one script's conversation tests and
/// show the page with their results. Any logged-in user may (it changes
/// nothing), with the CSRF token (it costs CPU).
pub async fn run_tests(
    State(console): State<Arc<Console>>,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: TestForm = form_body(&headers, &body).unwrap_or_default();
    if !auth.csrf_ok(form.csrf.as_deref(), &headers) {
        return no_csrf();
    }
    let all = match views(console).await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "console scripts: failed");
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Scripts unavailable",
                "Reading the scripts failed.",
            );
        }
    };
    let Some(index) = form.script.filter(|i| *i < all.len()) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "No such script",
            "Reload the scripts page.",
        );
    };
    let files = all[index].tests.clone();
    let run = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .map(|f| {
                let r = convtest::run_file(&f);
                (f, r)
            })
            .collect::<Run>()
    })
    .await;
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            tracing::warn!(error = %e, "console scripts: the test run failed");
            return refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Tests failed to run",
                "The test run stopped; see the log.",
            );
        }
    };
    let (passed, failed) = tally(&run);
    tracing::info!(user = %auth.identity.name, script = %all[index].path.display(), passed, failed, "console: conversation tests run");
    html(render(
        &auth.identity,
        auth.csrf_field(),
        &all,
        Some((index, &run)),
    ))
}

/// Passed and failed conversations (a file that cannot load counts one failure).
pub fn tally(run: &Run) -> (usize, usize) {
    run.iter().fold((0, 0), |(p, f), (_, r)| match r {
        Ok(results) => {
            let bad = results.iter().filter(|t| t.failure.is_some()).count();
            (p + results.len() - bad, f + bad)
        }
        Err(_) => (p, f + 1),
    })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn results(run: &Run) -> Markup {
    let (passed, failed) = tally(run);
    html! {
        div.results #test-results data-passed=(passed) data-failed=(failed) {
            p.summary class=(if failed == 0 { "ok" } else { "error" }) {
                (passed) " passed, " (failed) " failed"
            }
            @for (file, r) in run {
                h4 { (file_name(file)) }
                @match r {
                    Ok(results) => ul.tests {
                        @for t in results {
                            @match &t.failure {
                                None => li.pass { span.mark { "✓" } " " (t.name) },
                                Some(why) => li.fail { span.mark { "✗" } " " (t.name) pre { (why) } },
                            }
                        }
                    },
                    Err(problems) => ul.problems {
                        @for p in problems { li.error { (p.to_string()) } }
                    },
                }
            }
        }
    }
}

pub fn render(
    who: &Identity,
    csrf: &str,
    scripts: &[ScriptView],
    run: Option<(usize, &Run)>,
) -> Markup {
    layout(
        "Scripts",
        Some((who, csrf)),
        html! {
            h1 { "Scripts" }
            @if scripts.is_empty() {
                p.empty { "This engine runs no dialog script (dialog.script) and no campaign." }
            }
            @for (i, s) in scripts.iter().enumerate() {
                section.script data-script=(i) {
                    h2 { (s.name.as_deref().unwrap_or("(unreadable)")) }
                    p.hint { code { (s.path.display().to_string()) } " · used by " (s.used_by.join(", ")) }
                    @let errors = s.problems.iter().filter(|p| p.is_error()).count();
                    @if s.problems.is_empty() {
                        p.ok.problems-none { "No problems." }
                    } @else {
                        @if errors > 0 {
                            p.error { (errors) " error(s): the engine runs the last version that passed, not this file." }
                        }
                        ul.problems {
                            @for p in &s.problems {
                                li class=(if p.is_error() { "error" } else { "warning" }) { (p.to_string()) }
                            }
                        }
                    }
                    @if let Some(svg) = &s.svg {
                        // Built by graph_svg from escaped text only.
                        div.graph-box { (PreEscaped(svg)) }
                    }
                    h3 { "Conversation tests" }
                    @if s.tests.is_empty() {
                        p.empty { "None found (tests/*.yaml beside the script, naming it in script:)." }
                    } @else {
                        p.hint { @for t in &s.tests { code { (file_name(t)) } " " } }
                        form.inline method="post" action="/console/scripts/test" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="script" value=(i);
                            button.run-tests type="submit" { "Run the tests" }
                        }
                    }
                    @if let Some((at, r)) = run { @if at == i { (results(r)) } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleRole;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scripts")
    }

    fn who() -> Identity {
        Identity {
            name: "x".into(),
            role: ConsoleRole::Viewer,
        }
    }

    #[test]
    fn the_shipped_script_has_its_graph_and_its_tests() {
        let path = fixtures().join("customer-service.yaml");
        let v = view(&path, vec!["inbound calls".into()], 0);
        assert_eq!(
            v.problems.iter().filter(|p| p.is_error()).count(),
            0,
            "{:?}",
            v.problems
        );
        let names: Vec<String> = v.tests.iter().map(|t| file_name(t)).collect();
        assert_eq!(
            names,
            ["customer-service.en.yaml", "customer-service.zh.yaml"]
        );
        let page = render(&who(), "tok", &[v], None).into_string();
        assert!(page.contains("<svg class=\"graph\" id=\"graph-0\""));
        assert!(page.contains("class=\"run-tests\""));
        assert!(page.contains("name=\"script\" value=\"0\""));
    }

    #[test]
    fn a_broken_script_shows_its_problems_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(
            &path,
            "name: bad\nstart: nowhere\nstates:\n  a:\n    say: <hi>\n    hangup: done\n",
        )
        .unwrap();
        let v = view(&path, vec!["inbound calls".into()], 0);
        assert!(v.problems.iter().any(Problem::is_error), "{:?}", v.problems);
        let page = render(&who(), "t", &[v], None).into_string();
        assert!(page.contains("the engine runs the last version that passed"));
        assert!(page.contains("bad.yaml:"), "{page}");
    }

    #[test]
    fn the_tests_run_and_their_results_show() {
        let path = fixtures().join("tests/customer-service.en.yaml");
        let run: Run = vec![(path.clone(), convtest::run_file(&path))];
        let (passed, failed) = tally(&run);
        assert!(passed > 0 && failed == 0, "{run:?}");
        let html = results(&run).into_string();
        assert!(html.contains(&format!("data-passed=\"{passed}\"")));
        assert!(html.contains("class=\"pass\""));
        let broken: Run = vec![(path, Err(vec![]))];
        assert_eq!(tally(&broken), (0, 1));
    }
}
