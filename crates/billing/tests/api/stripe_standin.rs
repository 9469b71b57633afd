//! A stand-in for Stripe's API: an HTTP server on a free port that records
//! every request and answers each with the next scripted reply (Stripe's
//! documented JSON), or with Stripe's 404 when the script is spent.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a failure fails the test"
)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use serde_json::{Value, json};
use tokio_util::task::TaskTracker;

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The form-encoded body, decoded, sorted by key (then value).
    pub fn form(&self) -> Vec<(String, String)> {
        sorted(serde_urlencoded::from_str(&self.body).unwrap())
    }

    /// The query string, decoded, sorted by key (then value).
    pub fn query(&self) -> Vec<(String, String)> {
        sorted(serde_urlencoded::from_str(&self.query).unwrap())
    }
}

/// Pairs sorted, to compare a form key by key regardless of order.
pub fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

/// What the stand-in answers.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
    delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self::status(200, body)
    }

    pub fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            body,
            headers: vec![("Request-Id".to_owned(), "req_standin".to_owned())],
            delay: Duration::ZERO,
        }
    }

    /// Stripe's error object with this status.
    pub fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Self {
        Self::status(
            status,
            json!({"error": {"type": kind, "code": code, "message": message}}),
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    replies: Mutex<VecDeque<Reply>>,
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    /// `http://127.0.0.1:<port>`: the client's `STRIPE_API_BASE`.
    pub base: String,
    state: Arc<State>,
    handle: ServerHandle,
}

impl StandIn {
    pub fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            requests: Mutex::default(),
            replies: Mutex::new(replies.into_iter().collect()),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1024 * 1024))
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .expect("listening")
        .run();
        let handle = server.handle();
        let tasks = TaskTracker::new();
        tasks.spawn(server);
        tasks.close();
        Self {
            base,
            state,
            handle,
        }
    }

    /// Scripts more replies, after those already waiting.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.replies.lock().unwrap().extend(replies);
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The only request so far.
    pub fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // `stop` sends the command when called; nothing to wait for.
        drop(self.handle.stop(false));
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    state.requests.lock().unwrap().push(Recorded {
        method: request.method().to_string(),
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let reply = state
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| {
            Reply::error(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                "The stand-in has no reply scripted.",
            )
        });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response
        .content_type("application/json")
        .body(reply.body.to_string())
}
