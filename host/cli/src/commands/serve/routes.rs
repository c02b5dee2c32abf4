//! The endpoints: routing, access, bodies, and the answers.
//!
//! Every error is JSON, `{"error": "..."}`; a batch answers each line in
//! order, a decision or `{"line": N, "error": "..."}` (see `docs/openapi.yaml`).
//! A request answered before its body was read has the body read and
//! thrown away afterwards, within bounds ([`bodies::linger`]), so that
//! clients that send before they read still see the answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::State;
use super::answer::{Answer, AnswerBody, Cut};
use super::auth::Caller;
use super::batch::{self, Chunk};
use super::bodies::{self, Unread};
use super::connections::RequestSteps;
use super::limits::{Panicked, Ticket};
use super::metrics::{Endpoint, Tally};
use crate::lines::{Format, MAX_LINE_BYTES, parse_bytes};

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
/// `steps` records the request's progress on its connection until its
/// answer is taken.
pub async fn handle(state: Arc<State>, steps: RequestSteps, request: Request<Incoming>) -> Result<Answer, Infallible> {
    let route = Route::of(request.uri().path());
    let expects_continue = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, mut body) = request.into_parts();
    let mut read = false;
    let answer = answer(&state, route, &parts, &mut body, &mut read, &steps).await;
    state.metrics.request(route.label(), answer.status().as_u16());
    // Answered before the body was read to its end: read and discard the
    // rest, so the client sees the answer, unless it was too slow (408) or
    // waits to be invited to send (`Expect: 100-continue`, not yet invited).
    if answer.status() != StatusCode::REQUEST_TIMEOUT && !(expects_continue && !read) {
        bodies::linger(body, state.bounds.max_body_bytes, state.bounds.read_timeout);
    }
    Ok(answer.map(|content| content.watched(steps)))
}

async fn answer(
    state: &Arc<State>,
    route: Route,
    parts: &hyper::http::request::Parts,
    body: &mut Incoming,
    read: &mut bool,
    steps: &RequestSteps,
) -> Answer {
    if route == Route::Unknown {
        return error(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let method = &parts.method;
    if *method != route.method() && !(route.method() == Method::GET && method == Method::HEAD) {
        let mut answer = error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {}", route.method()));
        let allow = if route.method() == Method::POST { "POST" } else { "GET, HEAD" };
        answer.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        return answer;
    }
    let mut caller = Caller::default();
    if route.needs_token()
        && let Some(tokens) = &state.tokens
    {
        match tokens.tokens().admit(parts.headers.get(header::AUTHORIZATION)) {
            Some(admitted) => caller = admitted,
            None => {
                let mut answer = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
                answer.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return answer;
            }
        }
    }
    match route {
        Route::Decision | Route::Batch => match Options::of(parts.uri.query()) {
            Ok(options) => decide(state, route, options, caller, body, read, steps).await,
            Err(problem) => error(StatusCode::BAD_REQUEST, &problem),
        },
        Route::Policies => respond(StatusCode::OK, JSON, super::policies_endpoint::to_json(&state.host)),
        Route::Health => respond(StatusCode::OK, JSON, "{\"status\":\"alive\"}\n".to_owned()),
        Route::Ready => ready(state),
        Route::Metrics => {
            respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.metrics.render(&state.host))
        }
        Route::Unknown => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// What the query string of a decision request asks for.
#[derive(Clone, Copy, Debug, Default)]
struct Options {
    /// `explain`: every loaded policy's verdict beside each decision.
    explain: bool,
}

impl Options {
    /// `explain`, `explain=true|1` or `explain=false|0`; anything else is refused.
    fn of(query: Option<&str>) -> Result<Options, String> {
        let mut options = Options::default();
        for pair in query.unwrap_or("").split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, "true"));
            options.explain = match (name, value) {
                ("explain", "true" | "1") => true,
                ("explain", "false" | "0") => false,
                ("explain", _) => return Err("`explain` is `true` or `false`".to_owned()),
                _ => {
                    let name = flowgate::escape(name, 64);
                    return Err(format!("unknown query parameter `{name}`; the only one is `explain`"));
                }
            };
        }
        Ok(options)
    }
}

async fn decide(
    state: &Arc<State>,
    route: Route,
    options: Options,
    caller: Caller,
    body: &mut Incoming,
    read: &mut bool,
    steps: &RequestSteps,
) -> Answer {
    let limit = match route {
        Route::Decision => state.bounds.max_body_bytes.min(MAX_LINE_BYTES),
        _ => state.bounds.max_body_bytes,
    };
    let too_large =
        || closing(error(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is larger than the {limit} bytes allowed")));
    // A declared length over the limit is refused before any of it is read
    // and before it takes a place in the queue.
    if bodies::declared_over(body, limit) {
        return too_large();
    }
    let Some(ticket) = state.admission.admit() else {
        let mut answer = error(StatusCode::SERVICE_UNAVAILABLE, "overloaded: every place in the queue is taken");
        answer.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        return answer;
    };
    *read = true;
    let timeout = state.bounds.read_timeout;
    let bytes = match bodies::read(body, limit, timeout).await {
        Ok(bytes) => bytes,
        Err(Unread::TooLarge) => return too_large(),
        Err(Unread::TimedOut) => {
            let message = format!("the body did not arrive within {} ms", timeout.as_millis());
            return closing(error(StatusCode::REQUEST_TIMEOUT, &message));
        }
        Err(Unread::Broken) => return closing(error(StatusCode::BAD_REQUEST, "the body could not be read")),
    };
    steps.deciding();
    let format = Format { explain: options.explain, ..state.format };
    let decided = match route {
        Route::Decision => single(state, ticket, bytes, format, caller).await,
        _ => batch(state, ticket, bytes, format, caller).await,
    };
    decided.unwrap_or_else(|Panicked| error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

/// Why a request got no decision.
enum Unanswered {
    /// The record is not valid (400).
    Invalid(String),
    /// Its receipt could not be written (503: the decision is not given).
    Unlogged(String),
}

async fn single(
    state: &Arc<State>,
    ticket: Ticket,
    body: Bytes,
    format: Format,
    caller: Caller,
) -> Result<Answer, Panicked> {
    let (host, metrics) = (Arc::clone(&state.host), Arc::clone(&state.metrics));
    let decided = state
        .admission
        .evaluate(&ticket, move || {
            let started = Instant::now();
            let record = match parse_bytes(&body, body.len()) {
                Ok(Some(record)) => record,
                Ok(None) => {
                    return Err(Unanswered::Invalid("the body is empty: a flow record is a JSON object".to_owned()));
                }
                Err(reason) => return Err(Unanswered::Invalid(reason)),
            };
            drop(body);
            let mut tally = Tally::default();
            let mut json = String::new();
            // A decision whose receipt cannot be written is not given.
            let (pinned, flows) = (host.pin(), std::slice::from_ref(&record));
            host.decide_pinned(&pinned, flows, format.explain, caller.key(), |decision, verdicts| {
                tally.add(&decision);
                json = format.render(&decision, format.explain.then_some(&verdicts[..]));
                json.push('\n');
            })
            .map_err(|err| Unanswered::Unlogged(format!("{:#}", anyhow::Error::from(err))))?;
            metrics.decided(Endpoint::Single, tally, started.elapsed());
            Ok(json)
        })
        .await?;
    Ok(match decided {
        Ok(json) => respond(StatusCode::OK, JSON, json).map(|content| content.holding(ticket)),
        Err(Unanswered::Invalid(reason)) => error(StatusCode::BAD_REQUEST, &reason),
        Err(Unanswered::Unlogged(reason)) => error(StatusCode::SERVICE_UNAVAILABLE, &reason),
    })
}

/// A batch: parsed, then decided and answered chunk by chunk (see [`batch`]).
async fn batch(
    state: &Arc<State>,
    ticket: Ticket,
    body: Bytes,
    format: Format,
    caller: Caller,
) -> Result<Answer, Panicked> {
    let mut busy = Duration::ZERO;
    // Parse every line first, a part at a time: the status depends on them all.
    let (mut chunks, mut invalid, mut from, mut line) = (Vec::new(), 0, 0, 1);
    while from < body.len() {
        let text = body.clone();
        let part = state
            .admission
            .evaluate(&ticket, move || {
                let started = Instant::now();
                (batch::parse_part(&text, from, line), started.elapsed())
            })
            .await?;
        let (part, took) = part;
        busy += took;
        chunks.extend(part.chunks);
        invalid += part.invalid;
        (from, line) = (part.next, part.next_line);
    }
    let pinned = state.host.pin();
    let mut chunks = chunks.into_iter();
    let first = match chunks.next() {
        None => Ok((String::new(), Duration::ZERO)),
        Some(chunk) => answer_chunk(state, &ticket, &pinned, &body, chunk, format, &caller).await?,
    };
    let (first, took) = match first {
        Ok(first) => first,
        // No receipt, no decision: none of the batch is given.
        Err(reason) => return Ok(error(StatusCode::SERVICE_UNAVAILABLE, &reason)),
    };
    busy += took;
    // Some lines invalid: 400, with every line still answered in order.
    let status = if invalid == 0 { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let content = if chunks.as_slice().is_empty() {
        state.metrics.observe(Endpoint::Batch, busy);
        AnswerBody::full(first).holding(ticket)
    } else {
        let (sender, receiver) = mpsc::channel(1);
        let state = Arc::clone(state);
        tokio::spawn(async move {
            for chunk in chunks {
                let answered = match answer_chunk(&state, &ticket, &pinned, &body, chunk, format, &caller).await {
                    Ok(Ok((text, took))) => {
                        busy += took;
                        Ok(Bytes::from(text))
                    }
                    Ok(Err(reason)) => Err(Cut(reason)),
                    Err(Panicked) => Err(Cut("internal error".to_owned())),
                };
                let last = answered.is_err();
                // The client went away: stop deciding for it.
                if sender.send(answered).await.is_err() || last {
                    return;
                }
            }
            state.metrics.observe(Endpoint::Batch, busy);
        });
        AnswerBody::streamed(Bytes::from(first), receiver)
    };
    let mut answer = Response::new(content);
    *answer.status_mut() = status;
    answer.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_LINES));
    answer.headers_mut().insert("flowgate-invalid-lines", HeaderValue::from(invalid));
    Ok(answer)
}

/// Decides and renders one chunk on an evaluation thread; the text and the
/// time it took, or why its receipts could not be written.
async fn answer_chunk(
    state: &Arc<State>,
    ticket: &Ticket,
    pinned: &flowgate::PinnedSet,
    body: &Bytes,
    chunk: Chunk,
    format: Format,
    caller: &Caller,
) -> Result<Result<(String, Duration), String>, Panicked> {
    let (host, metrics, pinned, body, caller) =
        (Arc::clone(&state.host), Arc::clone(&state.metrics), pinned.clone(), body.clone(), caller.clone());
    state
        .admission
        .evaluate(ticket, move || {
            let started = Instant::now();
            let mut tally = Tally::default();
            let text = batch::answer_chunk(&host, &pinned, &body, chunk, format, &caller, &mut tally)?;
            metrics.tally(tally);
            Ok((text, started.elapsed()))
        })
        .await
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
    let mut answer = Response::new(AnswerBody::full(body));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_asks_for_explain_and_nothing_else() {
        assert!(!Options::of(None).unwrap().explain);
        assert!(Options::of(Some("explain")).unwrap().explain);
        assert!(Options::of(Some("explain=true")).unwrap().explain);
        assert!(Options::of(Some("explain=1&")).unwrap().explain);
        assert!(!Options::of(Some("explain=false")).unwrap().explain);
        assert!(Options::of(Some("explain=yes")).is_err());
        assert!(Options::of(Some("explian")).unwrap_err().contains("unknown query parameter `explian`"));
    }
}
