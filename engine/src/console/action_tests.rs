//! The state-changing console handlers called directly (no sockets): the
//! CSRF token is checked first, then the role, then the engine part.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use super::auth::Identity;
use super::{Auth, Console, Parts};
use crate::config::{Config, ConsoleRole};

fn console() -> Arc<Console> {
    let mut config = Config::default();
    config.console.enabled = true;
    config.console.token = Some("t".into());
    Console::new(
        &config,
        Parts {
            live: Default::default(),
            metrics: Default::default(),
            crm: None,
            campaigns: None,
        },
    )
    .expect("the console is on")
}

fn auth(role: ConsoleRole) -> Auth {
    Auth {
        identity: Identity {
            name: "someone".into(),
            role,
        },
        csrf: Some("the-token".into()),
    }
}

fn form() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    h
}

#[tokio::test]
async fn outbox_actions_need_the_token_then_an_operator() {
    let c = console();
    let post = |role, body: &'static str| {
        let c = c.clone();
        async move {
            super::outbox::act(
                State(c),
                auth(role),
                Path("retry".to_string()),
                form(),
                Bytes::from_static(body.as_bytes()),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        post(ConsoleRole::Operator, "id=1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(ConsoleRole::Operator, "csrf=wrong&id=1").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(ConsoleRole::Viewer, "csrf=the-token&id=1").await,
        StatusCode::FORBIDDEN
    );
    // An operator with the token gets past both: this engine has no CRM.
    assert_eq!(
        post(ConsoleRole::Operator, "csrf=the-token&id=1").await,
        StatusCode::NOT_FOUND
    );
    // A form that names nothing is refused before the outbox is asked.
    assert_eq!(
        post(ConsoleRole::Admin, "csrf=the-token").await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn campaign_actions_need_the_token_then_an_operator() {
    let c = console();
    let post = |role, action: &'static str, body: &'static str| {
        let c = c.clone();
        async move {
            super::campaigns::act(
                State(c),
                auth(role),
                Path(("spring".to_string(), action.to_string())),
                form(),
                Bytes::from_static(body.as_bytes()),
            )
            .await
            .status()
        }
    };
    assert_eq!(
        post(ConsoleRole::Operator, "pause", "").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(ConsoleRole::Viewer, "pause", "csrf=the-token").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(ConsoleRole::Operator, "stop", "csrf=the-token").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post(ConsoleRole::Operator, "pause", "csrf=the-token").await,
        StatusCode::NOT_FOUND,
        "no campaign manager here"
    );
}

#[tokio::test]
async fn running_tests_needs_the_token_and_a_script_on_the_page() {
    let c = console();
    let post = |body: &'static str| {
        let c = c.clone();
        async move {
            super::scripts::run_tests(
                State(c),
                auth(ConsoleRole::Viewer),
                form(),
                Bytes::from_static(body.as_bytes()),
            )
            .await
            .status()
        }
    };
    assert_eq!(post("script=0").await, StatusCode::FORBIDDEN);
    // No script configured: index 0 names nothing.
    assert_eq!(
        post("csrf=the-token&script=0").await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_overview_samples_into_minutes() {
    let c = console();
    c.metrics
        .calls_started
        .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
    let page = super::overview::page(State(c.clone()), auth(ConsoleRole::Viewer)).await;
    assert_eq!(page.status(), StatusCode::OK);
}
