//! The client, its configuration, and actor handles.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use rivet_client_protocol::{
    base64, encode_payload, from_value, to_value, Encoding, HttpActionRequest, HttpActionResponse,
    HttpResponseError, Message,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, RemoteError};
use crate::http::{self, Endpoint, RawResponse};
use crate::key::{encode_component, serialize_key};

/// Default request timeout: above the actor-side action timeout (60 s) so that the actor's
/// own `actor.action_timed_out` reaches the caller instead of a client timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// Identifies this client in `user-agent`.
const USER_AGENT: &str = concat!("rivetkit-client-rust/", env!("CARGO_PKG_VERSION"));

/// Configures a [`Client`]. Defaults follow the npm client: namespace `RIVET_NAMESPACE` or
/// `default`, pool `RIVET_POOL` or `default`, token `RIVET_TOKEN` or none, encoding bare.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoint: String,
    token: Option<String>,
    namespace: String,
    pool: String,
    encoding: Encoding,
    timeout: Duration,
}

impl ClientBuilder {
    /// Sets the token sent as `Authorization: Bearer` to the API and `x-rivet-token` to the
    /// gateway.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sets the runner pool new actors are created in (`runner_name_selector`).
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.pool = pool.into();
        self
    }

    /// Sets the encoding of action requests and responses.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Sets the per-request timeout (connect, send and read the whole response).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client; fails when the endpoint is not an `http://` URL.
    pub fn build(self) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        Ok(Client {
            inner: Arc::new(Inner {
                endpoint,
                token: self.token,
                namespace: self.namespace,
                pool: self.pool,
                encoding: self.encoding,
                timeout: self.timeout,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    endpoint: Endpoint,
    token: Option<String>,
    namespace: String,
    pool: String,
    encoding: Encoding,
    timeout: Duration,
}

/// A client for one engine endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// How a handle names its actor.
#[derive(Debug, Clone)]
enum Query {
    ForId(String),
    Get {
        key: Vec<String>,
    },
    GetOrCreate {
        key: Vec<String>,
        /// Standard base64 of the CBOR input, as `PUT /actors` takes it.
        input: Option<String>,
    },
}

/// `PUT`/`POST /actors` body (engine-api.md §7.4).
#[derive(Serialize)]
struct CreateRequest<'a> {
    name: &'a str,
    key: String,
    runner_name_selector: &'a str,
    crash_policy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
}

#[derive(Deserialize)]
struct ActorBody {
    actor_id: String,
}

#[derive(Deserialize)]
struct OneActor {
    actor: ActorBody,
}

#[derive(Deserialize)]
struct ActorList {
    actors: Vec<ActorBody>,
}

/// Engine/gateway JSON error body (engine-api.md §4).
#[derive(Deserialize)]
struct JsonError {
    group: String,
    code: String,
    message: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

impl Client {
    /// A client for `endpoint` (`http://host:port`) with the default options.
    pub fn new(endpoint: impl Into<String>) -> Result<Client, ClientError> {
        Client::builder(endpoint).build()
    }

    /// A builder for a client of `endpoint`, with defaults from `RIVET_TOKEN`,
    /// `RIVET_NAMESPACE` and `RIVET_POOL`.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        ClientBuilder {
            endpoint: endpoint.into(),
            token: env("RIVET_TOKEN"),
            namespace: env("RIVET_NAMESPACE").unwrap_or_else(|| "default".to_string()),
            pool: env("RIVET_POOL").unwrap_or_else(|| "default".to_string()),
            encoding: Encoding::Bare,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The encoding actions use.
    pub fn encoding(&self) -> Encoding {
        self.inner.encoding
    }

    /// A handle to the existing actor `name` with `key`; resolving fails with
    /// `actor.not_found` when there is none.
    pub fn get<K, S>(&self, name: impl Into<String>, key: K) -> ActorHandle
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.handle(
            name.into(),
            Query::Get {
                key: key.into_iter().map(Into::into).collect(),
            },
        )
    }

    /// A handle to the actor `name` with `key`, created (without input) on first resolve if
    /// it does not exist.
    pub fn get_or_create<K, S>(&self, name: impl Into<String>, key: K) -> ActorHandle
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.handle(
            name.into(),
            Query::GetOrCreate {
                key: key.into_iter().map(Into::into).collect(),
                input: None,
            },
        )
    }

    /// [`Client::get_or_create`] passing `input` to the actor if this call creates it. The
    /// input travels as CBOR, as the npm client sends it.
    pub fn get_or_create_with_input<K, S, I>(
        &self,
        name: impl Into<String>,
        key: K,
        input: &I,
    ) -> Result<ActorHandle, ClientError>
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
        I: Serialize + ?Sized,
    {
        Ok(self.handle(
            name.into(),
            Query::GetOrCreate {
                key: key.into_iter().map(Into::into).collect(),
                input: Some(encode_input(input)?),
            },
        ))
    }

    /// Creates a new actor `name` with `key` now (`POST /actors`; `actor.duplicate_key` if
    /// the key is taken) and returns a handle to it by id.
    pub async fn create<K, S>(
        &self,
        name: impl Into<String>,
        key: K,
    ) -> Result<ActorHandle, ClientError>
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.create_inner(name.into(), key.into_iter().map(Into::into).collect(), None)
            .await
    }

    /// [`Client::create`] with an input for the new actor.
    pub async fn create_with_input<K, S, I>(
        &self,
        name: impl Into<String>,
        key: K,
        input: &I,
    ) -> Result<ActorHandle, ClientError>
    where
        K: IntoIterator<Item = S>,
        S: Into<String>,
        I: Serialize + ?Sized,
    {
        let input = encode_input(input)?;
        self.create_inner(
            name.into(),
            key.into_iter().map(Into::into).collect(),
            Some(input),
        )
        .await
    }

    /// A handle to the actor with id `actor_id` (no lookup).
    pub fn get_for_id(&self, name: impl Into<String>, actor_id: impl Into<String>) -> ActorHandle {
        let id = actor_id.into();
        let handle = self.handle(name.into(), Query::ForId(id.clone()));
        set_cached(&handle.resolved, Some(id));
        handle
    }

    fn handle(&self, name: String, query: Query) -> ActorHandle {
        ActorHandle {
            client: self.clone(),
            name,
            query,
            resolved: Arc::new(Mutex::new(None)),
            params: None,
        }
    }

    async fn create_inner(
        &self,
        name: String,
        key: Vec<String>,
        input: Option<String>,
    ) -> Result<ActorHandle, ClientError> {
        let body = CreateRequest {
            name: &name,
            key: serialize_key(&key),
            runner_name_selector: &self.inner.pool,
            crash_policy: "sleep",
            input: input.as_deref(),
        };
        let created: OneActor = self.rest(Method::POST, "/actors", &[], Some(&body)).await?;
        Ok(self.get_for_id(name, created.actor.actor_id))
    }

    /// One REST call: JSON in and out, namespace in the query, bearer token.
    async fn rest<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let inner = &self.inner;
        let mut full = format!("{path}?namespace={}", encode_component(&inner.namespace));
        for (k, v) in query {
            full.push_str(&format!("&{k}={}", encode_component(v)));
        }
        let mut headers = vec![("user-agent", USER_AGENT.to_string())];
        if let Some(token) = &inner.token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let bytes = match body {
            Some(body) => {
                headers.push(("content-type", "application/json".to_string()));
                serde_json::to_vec(body).map_err(|e| ClientError::Decode {
                    url: inner.endpoint.url(&full),
                    reason: format!("cannot encode the request body: {e}"),
                })?
            }
            None => Vec::new(),
        };
        let response = http::send(
            &inner.endpoint,
            method,
            &full,
            &headers,
            bytes,
            inner.timeout,
        )
        .await?;
        let url = inner.endpoint.url(&full);
        if !(200..300).contains(&response.status) {
            return Err(json_error(&url, &response));
        }
        serde_json::from_slice(&response.body).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }
}

/// CBOR of the JSON-compat value, standard base64 (engine-api.md §7.4, client-protocol.md §10.3).
fn encode_input<I: Serialize + ?Sized>(input: &I) -> Result<String, ClientError> {
    let value = to_value(input).map_err(|source| ClientError::Encode {
        what: "actor input",
        source,
    })?;
    Ok(base64::encode(&encode_payload(&value)))
}

/// An error from a JSON body (engine, gateway), or an HTTP error when the body is not one.
fn json_error(url: &str, response: &RawResponse) -> ClientError {
    match serde_json::from_slice::<JsonError>(&response.body) {
        Ok(e) => ClientError::Remote(Box::new(RemoteError {
            group: e.group,
            code: e.code,
            message: e.message,
            metadata: e.metadata.as_ref().and_then(|m| to_value(m).ok()),
            actor: None,
            status: Some(response.status),
        })),
        Err(_) => ClientError::Http {
            url: url.to_string(),
            status: response.status,
            body: response.body_text(),
        },
    }
}

/// JSON text with every non-ASCII character written as `\\uXXXX`, so it is a valid header
/// value and still parses to the same JSON.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn set_cached(cache: &Mutex<Option<String>>, id: Option<String>) {
    // A poisoned lock only means another task panicked mid-assignment of an Option; the value
    // is still a valid cache entry (or none).
    *cache.lock().unwrap_or_else(|p| p.into_inner()) = id;
}

fn cached(cache: &Mutex<Option<String>>) -> Option<String> {
    cache.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A reference to one actor. Cheap to clone; clones share the resolved id.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    client: Client,
    name: String,
    query: Query,
    resolved: Arc<Mutex<Option<String>>>,
    /// Connection parameters as JSON text (`x-rivet-conn-params`).
    params: Option<Arc<str>>,
}

impl ActorHandle {
    /// A copy of this handle that sends `params` as connection parameters with every
    /// request (the actor's connect hooks see them). Shares the resolved id.
    pub fn with_params<P: Serialize + ?Sized>(
        &self,
        params: &P,
    ) -> Result<ActorHandle, ClientError> {
        let json = serde_json::to_string(params).map_err(|e| ClientError::Encode {
            what: "connection parameters",
            source: rivet_client_protocol::Error::Conversion(e.to_string()),
        })?;
        Ok(ActorHandle {
            params: Some(ascii_json(&json).into()),
            ..self.clone()
        })
    }

    /// The actor's name (type).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actor's id: looked up (`get`), looked up or created (`get_or_create`), or the id
    /// the handle was made with. Cached after the first success.
    pub async fn resolve(&self) -> Result<String, ClientError> {
        if let Some(id) = cached(&self.resolved) {
            return Ok(id);
        }
        let id = self.lookup().await?;
        set_cached(&self.resolved, Some(id.clone()));
        Ok(id)
    }

    async fn lookup(&self) -> Result<String, ClientError> {
        let client = &self.client;
        match &self.query {
            Query::ForId(id) => Ok(id.clone()),
            Query::Get { key } => {
                let serialized = serialize_key(key);
                let list: ActorList = client
                    .rest::<(), _>(
                        Method::GET,
                        "/actors",
                        &[("name", &self.name), ("key", &serialized)],
                        None,
                    )
                    .await?;
                match list.actors.into_iter().next() {
                    Some(actor) => Ok(actor.actor_id),
                    None => Err(ClientError::Remote(Box::new(RemoteError {
                        group: "actor".to_string(),
                        code: "not_found".to_string(),
                        message: format!(
                            "Actor not found with name {:?} and key {serialized:?}",
                            self.name
                        ),
                        metadata: None,
                        actor: None,
                        status: None,
                    }))),
                }
            }
            Query::GetOrCreate { key, input } => {
                let body = CreateRequest {
                    name: &self.name,
                    key: serialize_key(key),
                    runner_name_selector: &client.inner.pool,
                    crash_policy: "sleep",
                    input: input.as_deref(),
                };
                let got: OneActor = client
                    .rest(Method::PUT, "/actors", &[], Some(&body))
                    .await?;
                Ok(got.actor.actor_id)
            }
        }
    }

    /// Calls action `name` with `args` (a tuple or array of arguments, e.g. `(5,)`, or `()`
    /// for none; any other value is passed as the single argument) and decodes its return
    /// value.
    ///
    /// For `get`/`get_or_create` handles an `actor.not_found` from a previously resolved id
    /// (the actor was destroyed) re-resolves once and retries.
    pub async fn action<A, O>(&self, name: &str, args: A) -> Result<O, ClientError>
    where
        A: Serialize,
        O: DeserializeOwned,
    {
        let args = to_value(&args).map_err(|source| ClientError::Encode {
            what: "action arguments",
            source,
        })?;
        let body = HttpActionRequest { args }.encode(self.client.inner.encoding);
        let was_cached = cached(&self.resolved).is_some();
        let id = self.resolve().await?;
        match self.send_action(&id, name, body.clone()).await {
            Err(e)
                if was_cached
                    && e.is("actor", "not_found")
                    && !matches!(self.query, Query::ForId(_)) =>
            {
                tracing::debug!(actor_id = %id, "cached actor id is gone; resolving again");
                set_cached(&self.resolved, None);
                let id = self.resolve().await?;
                self.send_action(&id, name, body).await
            }
            other => other,
        }
    }

    async fn send_action<O: DeserializeOwned>(
        &self,
        actor_id: &str,
        action: &str,
        body: Vec<u8>,
    ) -> Result<O, ClientError> {
        let inner = &self.client.inner;
        let encoding = inner.encoding;
        let token = inner
            .token
            .as_deref()
            .map(|t| format!("@{}", encode_component(t)))
            .unwrap_or_default();
        let path = format!(
            "/gateway/{}{token}/action/{}",
            encode_component(actor_id),
            encode_component(action)
        );
        let mut headers = vec![
            ("x-rivet-encoding", encoding.as_str().to_string()),
            ("content-type", encoding.content_type().to_string()),
            ("user-agent", USER_AGENT.to_string()),
        ];
        if let Some(t) = &inner.token {
            headers.push(("x-rivet-token", t.clone()));
        }
        if let Some(params) = &self.params {
            headers.push(("x-rivet-conn-params", params.to_string()));
        }
        let response = http::send(
            &inner.endpoint,
            Method::POST,
            &path,
            &headers,
            body,
            inner.timeout,
        )
        .await?;
        let url = inner.endpoint.url(&path);
        if response.status == 200 {
            let decoded = HttpActionResponse::decode(&response.body, encoding).map_err(|e| {
                ClientError::Decode {
                    url: url.clone(),
                    reason: e.to_string(),
                }
            })?;
            return from_value(&decoded.output).map_err(|e| ClientError::Decode {
                url,
                reason: e.to_string(),
            });
        }
        // Gateway errors are always JSON; actor errors come in the request's encoding.
        let body_encoding = if response.is_json() {
            Encoding::Json
        } else {
            encoding
        };
        match HttpResponseError::decode(&response.body, body_encoding) {
            Ok(e) => Err(ClientError::Remote(Box::new(RemoteError {
                group: e.group,
                code: e.code,
                message: e.message,
                metadata: e.metadata,
                actor: e.actor,
                status: Some(response.status),
            }))),
            Err(_) => Err(json_error(&url, &response)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_json_escapes_non_ascii_and_keeps_the_value() {
        let json = serde_json::to_string(&serde_json::json!({"n": "é😀", "a": 1})).unwrap();
        let ascii = ascii_json(&json);
        assert!(ascii.is_ascii(), "{ascii}");
        let back: serde_json::Value = serde_json::from_str(&ascii).unwrap();
        assert_eq!(back, serde_json::json!({"n": "é😀", "a": 1}));
    }
}
