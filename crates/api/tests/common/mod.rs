//! Shared by the API's integration tests: assertions on the reference's error bodies, JSON
//! requests and an engine on the memory store.
// Each test file uses a different subset.
#![allow(dead_code)]

use std::net::SocketAddr;

use rivet_engine::Engine;
use rivet_test_support::{engine_config as config, send, Response};
use serde_json::{json, Value};

/// Assertions on the reference's error bodies.
pub trait ErrorBody {
    /// Asserts an error response's status, group and code; returns the body.
    fn error(&self, status: u16, group: &str, code: &str) -> Value;
    /// Asserts a `400 api.bad_request` and returns its `metadata.reason`.
    fn reason(&self) -> String;
    /// Asserts a `400 validation.invalid_input` and returns its message.
    fn invalid_input(&self) -> String;
    /// Asserts a 200 and returns the JSON body.
    fn ok(&self) -> Value;
}

impl ErrorBody for Response {
    fn error(&self, status: u16, group: &str, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["group"], group, "{body}");
        assert_eq!(body["code"], code, "{body}");
        assert!(self
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        body
    }

    fn reason(&self) -> String {
        let body = self.error(400, "api", "bad_request");
        let reason = body["metadata"]["reason"].as_str().unwrap().to_string();
        assert_eq!(body["message"], format!("Request is invalid: {reason}"));
        reason
    }

    fn invalid_input(&self) -> String {
        let body = self.error(400, "validation", "invalid_input");
        let message = body["message"].as_str().unwrap().to_string();
        assert_eq!(body["metadata"], json!({ "message": message }));
        message
    }

    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()
    }
}

pub const JSON: (&str, &str) = ("content-type", "application/json");

pub async fn with_json(addr: SocketAddr, method: &str, path: &str, body: Value) -> Response {
    send(addr, method, path, &[JSON], &body.to_string()).await
}

pub async fn memory_engine(env: &[(&str, &str)]) -> (Engine, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let mut all = vec![("RIVET__memory", "{}")];
    all.extend_from_slice(env);
    (
        Engine::start(&config(home.path(), &all)).await.unwrap(),
        home,
    )
}
