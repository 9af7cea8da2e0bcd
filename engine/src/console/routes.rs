//! The console's routes and handlers (all under `/console`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::history::{self, Search};
use super::{pages, session, Auth, Console};

type Shared = Arc<Console>;

/// The console's router, to merge into the admin server's.
pub fn router(console: Shared) -> Router {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/live") }))
        .route("/console/", get(|| async { Redirect::to("/console/live") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/live", get(live))
        .route("/console/live/rows", get(live_rows))
        .route("/console/events", get(events))
        .route("/console/history", get(history_page))
        .route("/console/agent", get(agent_page))
        .route("/console/agent/events", get(agent_events))
        .route("/console/calls/{call_id}", get(call_page))
        .route("/console/calls/{call_id}/lines", get(call_lines))
        .route("/console/calls/{call_id}/recording", get(recording))
        .route("/console/outbox", get(super::outbox::page))
        .route("/console/outbox/{action}", post(super::outbox::act))
        .route("/console/campaigns", get(super::campaigns::page))
        .route(
            "/console/campaigns/{name}/{action}",
            post(super::campaigns::act),
        )
        .route("/console/scripts", get(super::scripts::page))
        .route("/console/scripts/test", post(super::scripts::run_tests))
        .route("/console/overview", get(super::overview::page))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .with_state(console)
}

/// Middleware for the monitoring routes when `console.open_monitoring`
/// is off: a session or the bearer token, else 401.
pub async fn require_login(State(console): State<Shared>, req: Request, next: Next) -> Response {
    if console.open_monitoring || console.authenticate(req.headers()).is_some() {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "log in to the console, or send Authorization: Bearer\n",
        )
            .into_response()
    }
}

impl FromRequestParts<Shared> for Auth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Shared) -> Result<Self, Response> {
        console.authenticate(&parts.headers).ok_or_else(|| {
            // Pages send the browser to the login form; fragments and
            // events (fetched by script) get a plain 401.
            let path = parts.uri.path();
            if path.ends_with("/lines")
                || path.ends_with("/rows")
                || path.ends_with("/events")
                || path.ends_with("/recording")
                || parts.method != axum::http::Method::GET
            {
                (StatusCode::UNAUTHORIZED, "not logged in\n").into_response()
            } else {
                Redirect::to("/console/login").into_response()
            }
        })
    }
}

pub(super) fn html(markup: maud::Markup) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing on these pages comes from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup,
    )
        .into_response()
}

pub(super) fn refused(status: StatusCode, title: &str, text: &str) -> Response {
    let mut r = html(pages::message(title, text));
    *r.status_mut() = status;
    r
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::JS,
    )
        .into_response()
}

/// Lifetime of the login form's CSRF cookie.
const LOGIN_FORM_TTL: Duration = Duration::from_secs(3600);

fn login_form(status: StatusCode, error: Option<&str>) -> Response {
    let token = session::random_token();
    let mut r = html(pages::login(&token, error));
    *r.status_mut() = status;
    if let Ok(v) = session::set_cookie(session::LOGIN_COOKIE, &token, LOGIN_FORM_TTL).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_page() -> Response {
    login_form(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(console): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let ip = peer.ip();
    if let Some(wait) = console.limiter.blocked(ip, Instant::now()) {
        let mut r = refused(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &format!(
                "Too many failed logins from your address; try again in {} s.",
                wait.as_secs().max(1)
            ),
        );
        if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie_value(v, session::LOGIN_COOKIE))
        .unwrap_or_default();
    if !session::same_secret(&cookie, &form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "Refused",
            "The login form expired or did not come from this console; reload it.",
        );
    }
    // argon2 is slow on purpose: off the async threads.
    let who = {
        let console = console.clone();
        tokio::task::spawn_blocking(move || console.users.verify(&form.name, &form.password))
            .await
            .ok()
            .flatten()
    };
    let Some(who) = who else {
        console.limiter.failed(ip, Instant::now());
        tracing::warn!(address = %ip, "console login refused");
        return login_form(StatusCode::UNAUTHORIZED, Some("Wrong name or password."));
    };
    console.limiter.succeeded(ip);
    tracing::info!(user = %who.name, address = %ip, "console login");
    let s = console.sessions.create(who, Instant::now());
    let mut r = Redirect::to("/console/live").into_response();
    // 303: the browser GETs the live page.
    *r.status_mut() = StatusCode::SEE_OTHER;
    for c in [
        session::set_cookie(session::COOKIE, &s.id, console.sessions.ttl()),
        session::set_cookie(session::LOGIN_COOKIE, "", Duration::ZERO),
    ] {
        if let Ok(v) = c.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[derive(Deserialize, Default)]
struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// The `csrf` field of a form body. Any other body (none, JSON, a wrong
/// content type) has none, so the request meets the CSRF refusal (403),
/// not a content-type error.
pub(super) fn csrf_field(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    form.then(|| serde_urlencoded::from_bytes::<CsrfForm>(body).ok())
        .flatten()
        .and_then(|f| f.csrf)
}

/// A form body as `T`, or None for any other body (then the request has
/// no CSRF token either and is refused as such).
pub(super) fn form_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Option<T> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    form.then(|| serde_urlencoded::from_bytes::<T>(body).ok())
        .flatten()
}

/// 303 to `to`: after a POST the browser GETs the page again.
pub(super) fn see_other(to: &str) -> Response {
    let mut r = Redirect::to(to).into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    r
}

/// The refusal of a POST without this session's CSRF token.
pub(super) fn no_csrf() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Refused",
        "This request lacks its CSRF token.",
    )
}

/// The refusal of an action a viewer may not take.
pub(super) fn not_allowed() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Only operators and admins may do this.",
    )
}

async fn logout(
    State(console): State<Shared>,
    auth: Auth,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !auth.csrf_ok(csrf_field(&headers, &body).as_deref(), &headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request lacks its CSRF token.",
        );
    }
    if let Some(id) = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session::cookie_value(v, session::COOKIE))
    {
        console.sessions.remove(&id);
    }
    let mut r = Redirect::to("/console/login").into_response();
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = session::set_cookie(session::COOKIE, "", Duration::ZERO).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn live(State(console): State<Shared>, auth: Auth) -> Response {
    let calls = console.live.in_progress();
    html(pages::live(&auth.identity, auth.csrf_field(), &calls))
}

async fn live_rows(State(console): State<Shared>, auth: Auth) -> Response {
    let calls = console.live.in_progress();
    html(pages::live_rows(&auth.identity, &calls))
}

/// The id of each call that changes, as it changes.
async fn events(
    State(console): State<Shared>,
    _auth: Auth,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = console.live.subscribe();
    let stream = stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(id) => Event::default().event("call").data(id),
            // Changes were missed: the page reads everything again.
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data(""),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `?queue=NAME` of the agent page and its event stream.
#[derive(Deserialize, Default)]
struct AgentQuery {
    #[serde(default)]
    queue: String,
}

/// Longest queue name taken; longer ones are cut.
const MAX_QUEUE: usize = 64;

fn queue_name(q: &AgentQuery) -> String {
    q.queue.trim().chars().take(MAX_QUEUE).collect()
}

async fn agent_page(auth: Auth, Query(q): Query<AgentQuery>) -> Response {
    html(pages::agent(
        &auth.identity,
        auth.csrf_field(),
        &queue_name(&q),
    ))
}

/// The transfers to one queue or extension, each as a `transfer` event
/// whose data is the screen pop as JSON (masked for viewers), after one
/// `ready` event that says the subscription is in place.
async fn agent_events(
    State(console): State<Shared>,
    auth: Auth,
    Query(q): Query<AgentQuery>,
) -> Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>> {
    let rx = console.live.subscribe_transfers();
    let queue = queue_name(&q);
    let sees = auth.identity.sees_numbers();
    let ready = Event::default().event("ready").data(queue.clone());
    let pops = stream::unfold((rx, queue), move |(mut rx, queue)| async move {
        loop {
            let event = match rx.recv().await {
                Ok(pop) if pop.is_for(&queue) => {
                    match serde_json::to_string(&pop.for_reader(sees)) {
                        Ok(json) => Event::default().event("transfer").data(json),
                        Err(e) => {
                            tracing::warn!(error = %e, "screen pop not serialisable");
                            continue;
                        }
                    }
                }
                Ok(_) => continue,
                // Pops were missed: the page says so rather than guess.
                Err(RecvError::Lagged(n)) => Event::default().event("lagged").data(n.to_string()),
                Err(RecvError::Closed) => return None,
            };
            return Some((Ok(event), (rx, queue)));
        }
    });
    Sse::new(stream::once(async move { Ok(ready) }).chain(pops)).keep_alive(KeepAlive::default())
}

async fn call_page(
    State(console): State<Shared>,
    auth: Auth,
    Path(call_id): Path<String>,
) -> Response {
    let view = console.live.get(&call_id);
    let record = {
        let (path, id) = (console.cdr_path.clone(), call_id.clone());
        tokio::task::spawn_blocking(move || {
            history::open(&path)
                .ok()
                .and_then(|c| crate::cdr::show(&c, &id).ok().flatten())
        })
        .await
        .ok()
        .flatten()
    };
    if view.is_none() && record.is_none() {
        return refused(
            StatusCode::NOT_FOUND,
            "No such call",
            "No call in progress or on record has this id.",
        );
    }
    html(pages::call(
        &auth.identity,
        auth.csrf_field(),
        &call_id,
        view.as_ref(),
        record.as_ref(),
    ))
}

async fn call_lines(
    State(console): State<Shared>,
    _auth: Auth,
    Path(call_id): Path<String>,
) -> Response {
    html(pages::lines(console.live.get(&call_id).as_ref()))
}

async fn recording(
    State(console): State<Shared>,
    _auth: Auth,
    Path(call_id): Path<String>,
) -> Response {
    let path = console.cdr_path.clone();
    // The file named by the call's record (written by the engine), nothing
    // the request names.
    let bytes = tokio::task::spawn_blocking(move || {
        let conn = history::open(&path).ok()?;
        let record = crate::cdr::show(&conn, &call_id).ok()??;
        std::fs::read(record.recording?).ok()
    })
    .await
    .ok()
    .flatten();
    match bytes {
        Some(b) => (
            [
                (header::CONTENT_TYPE, "audio/wav"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            b,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no recording\n").into_response(),
    }
}

async fn history_page(
    State(console): State<Shared>,
    auth: Auth,
    Query(search): Query<Search>,
) -> Response {
    let (path, s) = (console.cdr_path.clone(), search.clone());
    let found = tokio::task::spawn_blocking(move || {
        let conn = history::open(&path).map_err(|e| e.to_string())?;
        let rows = history::search(&conn, &s).map_err(|e| e.to_string())?;
        let reasons = history::reasons(&conn).map_err(|e| e.to_string())?;
        Ok::<_, String>((rows, reasons))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let (rows, reasons) = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "console history: call records unreadable");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "History unavailable",
                "The call records cannot be read right now.",
            );
        }
    };
    let wanted = search.customer.trim().to_lowercase();
    let rows: Vec<_> = rows
        .into_iter()
        .map(|r| {
            let customer = console.live.get(&r.call_id).and_then(|v| v.customer);
            (r, customer)
        })
        .filter(|(_, c)| {
            wanted.is_empty()
                || c.as_deref()
                    .is_some_and(|c| c.to_lowercase().contains(&wanted))
        })
        .collect();
    html(pages::history(
        &auth.identity,
        auth.csrf_field(),
        &search,
        &reasons,
        &rows,
    ))
}
