//! The endpoints: routing, access, bodies, and the answers.
//!
//! Every error is JSON, `{"error": "..."}`; a batch answers each line in
//! order, a decision or `{"line": N, "error": "..."}` (see `docs/openapi.yaml`).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::State;
use super::limits::Ticket;
use super::metrics::{Endpoint, Tally};
use crate::lines::{Line, MAX_LINE_BYTES, Outcome, decide_lines, parse_line, read_chunk};

/// A response with its whole body.
pub type Answer = Response<Full<Bytes>>;

const JSON: &str = "application/json";
const JSON_LINES: &str = "application/x-ndjson";
/// How many seconds an overloaded server asks a client to wait.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Decision,
    Batch,
    Policies,
    Health,
    Ready,
    Metrics,
    Unknown,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            "/v1/decisions" => Route::Decision,
            "/v1/decisions/batch" => Route::Batch,
            "/v1/policies" => Route::Policies,
            "/healthz" => Route::Health,
            "/readyz" => Route::Ready,
            "/metrics" => Route::Metrics,
            _ => Route::Unknown,
        }
    }

    /// The metrics label.
    fn label(self) -> &'static str {
        match self {
            Route::Decision => "decisions",
            Route::Batch => "batch",
            Route::Policies => "policies",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::Unknown => "other",
        }
    }

    fn method(self) -> Method {
        match self {
            Route::Decision | Route::Batch => Method::POST,
            _ => Method::GET,
        }
    }

    /// Probes answer without a token: an orchestrator's kubelet has none.
    fn needs_token(self) -> bool {
        !matches!(self, Route::Health | Route::Ready)
    }
}

/// Answers one request; never fails, never panics on what the client sends.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let route = Route::of(request.uri().path());
    let answer = answer(&state, route, request).await;
    state.metrics.request(route.label(), answer.status().as_u16());
    Ok(answer)
}

async fn answer(state: &Arc<State>, route: Route, request: Request<Incoming>) -> Answer {
    if route == Route::Unknown {
        return error(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let method = request.method();
    if method != route.method() && !(route.method() == Method::GET && method == Method::HEAD) {
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {}", route.method()));
        let allow = if route.method() == Method::POST { "POST" } else { "GET, HEAD" };
        answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        return answer;
    }
    if route.needs_token()
        && let Some(tokens) = &state.tokens
        && !tokens.admit(request.headers().get(header::AUTHORIZATION))
    {
        let mut answer = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answer;
    }
    match route {
        Route::Decision | Route::Batch => decide(state, route, request.into_body()).await,
        Route::Policies => respond(StatusCode::OK, JSON, super::policies_endpoint::to_json(&state.host)),
        Route::Health => respond(StatusCode::OK, JSON, "{\"status\":\"alive\"}\n".to_owned()),
        Route::Ready => ready(state),
        Route::Metrics => {
            respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.metrics.render(&state.host))
        }
        Route::Unknown => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

async fn decide(state: &Arc<State>, route: Route, body: Incoming) -> Answer {
    let Some(ticket) = state.admission.admit() else {
        let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, "overloaded: every place in the queue is taken");
        answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        return answer;
    };
    let limit = match route {
        Route::Decision => state.bounds.max_body_bytes.min(MAX_LINE_BYTES),
        _ => state.bounds.max_body_bytes,
    };
    let body = match read_body(state, body, limit).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let decided = match route {
        Route::Decision => single(state, &ticket, body).await,
        _ => batch(state, &ticket, body).await,
    };
    decided.unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// The whole body, within the size limit and the read timeout.
async fn read_body(state: &State, body: Incoming, limit: usize) -> Result<Bytes, Answer> {
    let too_large =
        || closing(error(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is larger than the {limit} bytes allowed")));
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let timeout = state.bounds.read_timeout;
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(_)) => Err(closing(error(StatusCode::BAD_REQUEST, "the body could not be read"))),
        Err(_) => Err(closing(error(
            StatusCode::REQUEST_TIMEOUT,
            &format!("the body did not arrive within {} ms", timeout.as_millis()),
        ))),
    }
}

async fn single(state: &Arc<State>, ticket: &Ticket, body: Bytes) -> Result<Answer, super::limits::Panicked> {
    let (host, metrics, format) = (Arc::clone(&state.host), Arc::clone(&state.metrics), state.format);
    let decided = state
        .admission
        .evaluate(ticket, move || {
            let started = Instant::now();
            let line = Line { len: body.len(), bytes: body.into() };
            let record = match parse_line(&line) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    return Err(Unanswered::Invalid("the body is empty: a flow record is a JSON object".to_owned()));
                }
                Err(reason) => return Err(Unanswered::Invalid(reason)),
            };
            // A decision whose receipt cannot be written is not given.
            let decision = host
                .try_evaluate_batch(std::slice::from_ref(&record))
                .map_err(|err| Unanswered::Unlogged(format!("{:#}", anyhow::Error::from(err))))?;
            let decision = decision.into_iter().next().expect("one decision per record");
            let mut tally = Tally::default();
            tally.add(&decision);
            let mut json = format.render(&decision, None);
            json.push('\n');
            metrics.decided(Endpoint::Single, tally, started.elapsed());
            Ok(json)
        })
        .await?;
    Ok(match decided {
        Ok(json) => respond(StatusCode::OK, JSON, json),
        Err(Unanswered::Invalid(reason)) => error(StatusCode::BAD_REQUEST, &reason),
        Err(Unanswered::Unlogged(reason)) => error(StatusCode::SERVICE_UNAVAILABLE, &reason),
    })
}

/// Why a request got no decision.
enum Unanswered {
    /// The record is not valid (400).
    Invalid(String),
    /// Its receipt could not be written (503: the decision is not given).
    Unlogged(String),
}

async fn batch(state: &Arc<State>, ticket: &Ticket, body: Bytes) -> Result<Answer, super::limits::Panicked> {
    let (host, metrics, format) = (Arc::clone(&state.host), Arc::clone(&state.metrics), state.format);
    let (text, invalid, unlogged) = state
        .admission
        .evaluate(ticket, move || {
            let started = Instant::now();
            // Read as `check` reads a file: the same line, blank-line and length rules.
            let lines = read_chunk(&mut &body[..], usize::MAX).unwrap_or_default();
            let mut tally = Tally::default();
            // One evaluate_batch call for the whole request.
            let outcomes = decide_lines(&host, &lines, format, |decision| tally.add(decision));
            let mut text = String::with_capacity(outcomes.len() * 256);
            let mut invalid = 0_usize;
            for (index, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    Outcome::Blank => continue,
                    // The receipts of the batch could not be written: no decision of it is given.
                    Outcome::Unlogged(reason) => return (String::new(), 0, Some(reason)),
                    Outcome::Decided(json, _) => text.push_str(&json),
                    Outcome::Invalid(reason) => {
                        invalid += 1;
                        // `line` first, so a reader can tell the line from its first bytes.
                        let reason = serde_json::Value::String(reason);
                        text.push_str(&format!("{{\"line\":{},\"error\":{reason}}}", index + 1));
                    }
                }
                text.push('\n');
            }
            metrics.decided(Endpoint::Batch, tally, started.elapsed());
            (text, invalid, None)
        })
        .await?;
    if let Some(reason) = unlogged {
        return Ok(error(StatusCode::SERVICE_UNAVAILABLE, &reason));
    }
    // Some lines invalid: 400, with every line still answered in order.
    let status = if invalid == 0 { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let mut answer = respond(status, JSON_LINES, text);
    answer.headers_mut().insert("flowgate-invalid-lines", HeaderValue::from(invalid));
    Ok(answer)
}

fn ready(state: &State) -> Answer {
    let not_ready = |reason: &str| {
        respond(
            StatusCode::SERVICE_UNAVAILABLE,
            JSON,
            serde_json::json!({"status": "not ready", "reason": reason}).to_string() + "\n",
        )
    };
    if state.draining.load(Ordering::Relaxed) {
        return not_ready("shutting down");
    }
    let policies = state.host.policies();
    if policies.is_empty() {
        return not_ready("no policies are loaded");
    }
    if let Some(trust) = state.host.trust() {
        for name in trust.required() {
            match policies.iter().find(|status| &status.info.name == name) {
                None => return not_ready(&format!("required policy `{name}` is not loaded")),
                Some(status) if status.quarantined => {
                    return not_ready(&format!("required policy `{name}` is quarantined"));
                }
                Some(_) => {}
            }
        }
    }
    let ready = serde_json::json!({
        "status": "ready",
        "policy_set": state.host.policy_set().to_string(),
        "policies": policies.len(),
    });
    respond(StatusCode::OK, JSON, ready.to_string() + "\n")
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() = status;
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer
}

/// `{"error": message}`; the message is JSON-escaped, whatever the client sent.
fn error(status: StatusCode, message: &str) -> Answer {
    respond(status, JSON, serde_json::json!({"error": message}).to_string() + "\n")
}

/// The body was not read to its end: the connection cannot carry another request.
fn closing(mut answer: Answer) -> Answer {
    answer.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    answer
}
