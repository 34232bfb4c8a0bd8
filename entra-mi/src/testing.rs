//! Test doubles: a scripted transport that records requests.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use entra_core::{Error, HttpRequest, HttpResponse, HttpTransport, TransportErrorKind};
use http::HeaderValue;

#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Answer(HttpResponse),
    Fail(TransportErrorKind),
}

/// Answers from a script (then fails), or repeats one reply for ever.
#[derive(Debug)]
pub(crate) struct FakeTransport {
    script: Mutex<VecDeque<Reply>>,
    repeat: Option<Reply>,
    requests: Mutex<Vec<HttpRequest>>,
}

impl FakeTransport {
    pub(crate) fn script(answers: Vec<HttpResponse>) -> Self {
        Self::replies(answers.into_iter().map(Reply::Answer).collect())
    }

    pub(crate) fn replies(replies: Vec<Reply>) -> Self {
        Self {
            script: Mutex::new(replies.into()),
            repeat: None,
            requests: Mutex::default(),
        }
    }

    pub(crate) fn repeat(answer: HttpResponse) -> Self {
        Self {
            script: Mutex::default(),
            repeat: Some(Reply::Answer(answer)),
            requests: Mutex::default(),
        }
    }

    pub(crate) fn failing(kind: TransportErrorKind) -> Self {
        Self {
            script: Mutex::default(),
            repeat: Some(Reply::Fail(kind)),
            requests: Mutex::default(),
        }
    }

    pub(crate) fn requests(&self) -> Vec<HttpRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl HttpTransport for FakeTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let endpoint = entra_core::wire::endpoint(&request.url);
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
        // Let concurrent callers run, as a real network round trip would.
        tokio::task::yield_now().await;
        let reply = self
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
            .or_else(|| self.repeat.clone());
        match reply {
            Some(Reply::Answer(response)) => Ok(response),
            Some(Reply::Fail(kind)) => Err(Error::Transport {
                endpoint,
                kind,
                source: None,
            }),
            None => Err(Error::Transport {
                endpoint,
                kind: TransportErrorKind::Other,
                source: None,
            }),
        }
    }
}

/// A JSON answer.
pub(crate) fn json(status: u16, body: &str) -> HttpResponse {
    let mut r = HttpResponse::new(status, body.to_owned());
    r.headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// A 200 token answer.
pub(crate) fn ok_token(token: &str, expires_in: u64) -> HttpResponse {
    json(
        200,
        &format!(
            r#"{{"access_token":"{token}","expires_in":"{expires_in}","token_type":"Bearer","resource":"r"}}"#
        ),
    )
}
