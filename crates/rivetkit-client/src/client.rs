//! The client, its configuration, and actor handles.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use rivet_client_protocol::{
    base64, encode_payload, from_value, to_value, Encoding, HttpActionRequest, HttpActionResponse,
    HttpResponseError, Message, Value,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::conn::Connection;
use crate::error::{ClientError, RemoteError};
use crate::http::{Endpoint, HttpPool, Outgoing, RawResponse};
use crate::key::{encode_component, serialize_key};
use crate::raw::{FetchResponse, RawWebSocket};
use crate::retry;
use crate::ws;

/// Default request timeout: above the actor-side action timeout (60 s) so that the actor's
/// own `actor.action_timed_out` reaches the caller instead of a client timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// Identifies this client in `user-agent`.
pub(crate) const USER_AGENT: &str = concat!("rivetkit-client-rust/", env!("CARGO_PKG_VERSION"));

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

    /// Sets the per-request timeout: connect, send and read the whole response of an HTTP
    /// request; open a WebSocket and receive `Init`; wait for an action's answer on a
    /// [`Connection`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client; fails when the endpoint is not an `http://` URL.
    pub fn build(self) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http: HttpPool::new(endpoint),
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
    /// The endpoint and the kept-alive connections to it.
    http: HttpPool,
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
    /// Why the actor could not be scheduled (`GET /actors?actor_ids=`), when it could not.
    #[serde(default)]
    error: Option<serde_json::Value>,
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

    /// The encoding actions and connections use.
    pub fn encoding(&self) -> Encoding {
        self.inner.encoding
    }

    /// How many HTTP connections this client (and its clones) has opened so far. Requests
    /// reuse idle kept-alive connections, so sequential requests open one; WebSockets are
    /// not counted.
    pub fn http_connections_opened(&self) -> u64 {
        self.inner.http.connections_opened()
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
        handle.resolution.set(Some(id));
        handle
    }

    fn handle(&self, name: String, query: Query) -> ActorHandle {
        ActorHandle {
            client: self.clone(),
            name,
            query,
            resolution: Arc::new(Resolution::default()),
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
        let endpoint = inner.http.endpoint();
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
                    url: endpoint.url(&full),
                    reason: format!("cannot encode the request body: {e}"),
                })?
            }
            None => Vec::new(),
        };
        let request = Outgoing {
            method,
            path: &full,
            headers: &headers,
            body: Bytes::from(bytes),
        };
        let response = inner.http.send(request, inner.timeout).await?;
        let url = endpoint.url(&full);
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

/// The remote error of an engine or gateway JSON error body, if the body is one.
pub(crate) fn json_error_body(status: u16, body: &[u8]) -> Option<ClientError> {
    let e = serde_json::from_slice::<JsonError>(body).ok()?;
    Some(ClientError::Remote(Box::new(RemoteError {
        group: e.group,
        code: e.code,
        message: e.message,
        metadata: e.metadata.as_ref().and_then(|m| to_value(m).ok()),
        actor: None,
        status: Some(status),
    })))
}

/// An error from a JSON body (engine, gateway), or an HTTP error when the body is not one.
fn json_error(url: &str, response: &RawResponse) -> ClientError {
    json_error_body(response.status, &response.body).unwrap_or_else(|| ClientError::Http {
        url: url.to_string(),
        status: response.status,
        body: response.body_text(),
    })
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

/// `{base}/{kind}/{path}` for raw requests and sockets, as the npm client builds it: one
/// leading `/` of `path` is dropped and the rest (query included) appended, so `""` gives
/// `/request/` and `"/a?b=1"` gives `/request/a?b=1`.
fn raw_path(kind: &str, path: &str) -> String {
    format!("/{kind}/{}", path.strip_prefix('/').unwrap_or(path))
}

/// A handle's resolved actor id, shared by its clones and its connections.
#[derive(Debug, Default)]
struct Resolution {
    id: Mutex<Option<String>>,
    /// Held while looking up, so that concurrent calls on an unresolved handle make one
    /// lookup (one `PUT /actors` for getOrCreate) instead of one each.
    lookup: tokio::sync::Mutex<()>,
}

impl Resolution {
    fn get(&self) -> Option<String> {
        // A poisoned lock only means another task panicked mid-assignment of an Option; the
        // value is still a valid cache entry (or none).
        self.id.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, id: Option<String>) {
        *self.id.lock().unwrap_or_else(|p| p.into_inner()) = id;
    }

    /// Forgets `stale` unless another caller has already replaced it.
    fn invalidate(&self, stale: &str) {
        let mut id = self.id.lock().unwrap_or_else(|p| p.into_inner());
        if id.as_deref() == Some(stale) {
            *id = None;
        }
    }
}

/// Whether a failed operation may be attempted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retries {
    /// Stale resolutions, scheduling failures and transient gateway errors (§9.3, §10.3).
    All,
    /// One attempt: the operation must not run twice (an action named `destroy`).
    Once,
}

/// A reference to one actor. Cheap to clone; clones share the resolved id.
#[derive(Debug, Clone)]
pub struct ActorHandle {
    client: Client,
    name: String,
    query: Query,
    resolution: Arc<Resolution>,
    /// Connection parameters as JSON text (`x-rivet-conn-params`).
    params: Option<Arc<str>>,
}

impl ActorHandle {
    /// A copy of this handle that sends `params` as connection parameters with every
    /// request and connection (the actor's connect hooks see them). Shares the resolved id.
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

    /// The client this handle belongs to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The actor's id: looked up (`get`), looked up or created (`get_or_create`), or the id
    /// the handle was made with. Cached after the first success and shared by clones of the
    /// handle; a get/getOrCreate handle looks up again when the gateway reports the cached
    /// id stale (e.g. `actor.not_found` after the actor was destroyed).
    pub async fn resolve(&self) -> Result<String, ClientError> {
        if let Some(id) = self.resolution.get() {
            return Ok(id);
        }
        let _turn = self.resolution.lookup.lock().await;
        if let Some(id) = self.resolution.get() {
            return Ok(id);
        }
        let id = self.lookup().await?;
        self.resolution.set(Some(id.clone()));
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

    /// Whether this handle names its actor by name and key, so that a stale id can be
    /// replaced by looking up again.
    pub(crate) fn is_dynamic(&self) -> bool {
        !matches!(self.query, Query::ForId(_))
    }

    /// Attempts of one operation before giving up on stale resolutions (§10.3): getForId
    /// handles have nothing to look up again.
    pub(crate) fn max_attempts(&self) -> u32 {
        match self.query {
            Query::ForId(_) => 1,
            Query::Get { .. } => 24,
            Query::GetOrCreate { .. } => 60,
        }
    }

    /// Forgets the resolved id `stale` (no-op for getForId handles).
    pub(crate) fn invalidate(&self, stale: &str) {
        if self.is_dynamic() {
            tracing::debug!(actor_id = %stale, "resolved actor id is stale; resolving again");
            self.resolution.invalidate(stale);
        }
    }

    pub(crate) fn encoding(&self) -> Encoding {
        self.client.inner.encoding
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.client.inner.timeout
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        self.client.inner.http.endpoint()
    }

    /// The connection parameters as JSON text.
    pub(crate) fn params_json(&self) -> Option<&str> {
        self.params.as_deref()
    }

    /// `/gateway/{actor_id}[@token]{rest}` (path form, §10.3).
    pub(crate) fn gateway_path(&self, actor_id: &str, rest: &str) -> String {
        let token = self
            .client
            .inner
            .token
            .as_deref()
            .map(|t| format!("@{}", encode_component(t)))
            .unwrap_or_default();
        format!("/gateway/{}{token}{rest}", encode_component(actor_id))
    }

    /// Runs `op` against the resolved actor id with the retries of §9.3/§10.3: transient
    /// gateway and lifecycle errors up to 5 times (25 → 200 ms); for get/getOrCreate handles,
    /// stale resolutions and scheduling failures by resolving again (24/60 attempts, 100 ms
    /// apart when the actor is in transition).
    async fn with_retries<T, F, Fut>(&self, retries: Retries, mut op: F) -> Result<T, ClientError>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let max = match retries {
            Retries::All => self.max_attempts(),
            Retries::Once => 1,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = self.resolve().await?;
            let error = match lifecycle_retries(retries, || op(id.clone())).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let Some(remote) = error.remote() else {
                return Err(error);
            };
            let more = attempt < max;
            if retry::is_scheduling(remote) {
                if let Some(failure) = self.scheduling_failure(&id, remote).await {
                    return Err(failure);
                }
                if more {
                    self.invalidate(&id);
                    tokio::time::sleep(retry::STALE_RETRY_DELAY).await;
                    continue;
                }
            }
            if self.is_dynamic() && retry::is_stale(remote) {
                self.invalidate(&id);
                if more {
                    if retry::stale_needs_wait(remote) {
                        tokio::time::sleep(retry::STALE_RETRY_DELAY).await;
                    }
                    continue;
                }
            }
            if !self.is_dynamic() && remote.is("actor", "destroyed_while_waiting_for_ready") {
                return Err(ClientError::Remote(Box::new(RemoteError {
                    group: "actor".to_string(),
                    code: "not_found".to_string(),
                    message: "The actor does not exist or was destroyed.".to_string(),
                    ..remote.clone()
                })));
            }
            return Err(error);
        }
    }

    /// For a scheduling error, the reason the actor record gives (`GET /actors?actor_ids=`),
    /// as the npm client reports it: `Actor failed to start (<id>): <error JSON>`. `None`
    /// when the actor has no error (it may still start) or the lookup fails.
    pub(crate) async fn scheduling_failure(
        &self,
        actor_id: &str,
        cause: &RemoteError,
    ) -> Option<ClientError> {
        let list: ActorList = self
            .client
            .rest::<(), _>(Method::GET, "/actors", &[("actor_ids", actor_id)], None)
            .await
            .ok()?;
        let details = list
            .actors
            .into_iter()
            .find(|a| a.actor_id == actor_id)?
            .error
            .filter(|e| !e.is_null())?;
        let metadata = serde_json::json!({"actorId": actor_id, "details": details});
        Some(ClientError::Remote(Box::new(RemoteError {
            group: cause.group.clone(),
            code: cause.code.clone(),
            message: format!("Actor failed to start ({actor_id}): {details}"),
            metadata: to_value(&metadata).ok(),
            actor: cause.actor.clone(),
            status: cause.status,
        })))
    }

    /// Calls action `name` with `args` (a tuple or array of arguments, e.g. `(5,)`, or `()`
    /// for none; any other value is passed as the single argument) over HTTP and decodes its
    /// return value.
    ///
    /// Stale resolutions are resolved again and transient gateway failures retried (see
    /// [`ActorHandle::resolve`]); an action named `destroy` is attempted once.
    pub async fn action<A, O>(&self, name: &str, args: A) -> Result<O, ClientError>
    where
        A: Serialize,
        O: DeserializeOwned,
    {
        let args = to_value(&args).map_err(|source| ClientError::Encode {
            what: "action arguments",
            source,
        })?;
        let body = Bytes::from(HttpActionRequest { args }.encode(self.encoding()));
        // The npm client never repeats `destroy`: a second run would hit a destroyed actor.
        let retries = if name == "destroy" {
            Retries::Once
        } else {
            Retries::All
        };
        let output = self
            .with_retries(retries, |id| self.send_action(id, name, body.clone()))
            .await?;
        from_value(&output).map_err(|e| ClientError::Decode {
            url: self
                .endpoint()
                .url(&format!("/action/{}", encode_component(name))),
            reason: e.to_string(),
        })
    }

    async fn send_action(
        &self,
        actor_id: String,
        action: &str,
        body: Bytes,
    ) -> Result<Value, ClientError> {
        let inner = &self.client.inner;
        let encoding = inner.encoding;
        let path = self.gateway_path(&actor_id, &format!("/action/{}", encode_component(action)));
        let mut headers = vec![
            ("x-rivet-encoding", encoding.as_str().to_string()),
            ("content-type", encoding.content_type().to_string()),
            ("user-agent", USER_AGENT.to_string()),
        ];
        self.push_gateway_headers(&mut headers);
        let request = Outgoing {
            method: Method::POST,
            path: &path,
            headers: &headers,
            body,
        };
        let response = inner.http.send(request, inner.timeout).await?;
        let url = self.endpoint().url(&path);
        if response.status == 200 {
            let decoded = HttpActionResponse::decode(&response.body, encoding).map_err(|e| {
                ClientError::Decode {
                    url: url.clone(),
                    reason: e.to_string(),
                }
            })?;
            return Ok(decoded.output);
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

    /// `x-rivet-token` and `x-rivet-conn-params`, which every gateway request carries.
    fn push_gateway_headers(&self, headers: &mut Vec<(&str, String)>) {
        if let Some(t) = &self.client.inner.token {
            headers.push(("x-rivet-token", t.clone()));
        }
        if let Some(params) = &self.params {
            headers.push(("x-rivet-conn-params", params.to_string()));
        }
    }

    /// Sends a raw HTTP request to the actor's `onRequest` handler (`{base}/request/{path}`,
    /// §5.3): `path` may carry a query (`"/hello?x=1"`); `headers` and `body` go as given,
    /// plus the gateway headers (token, connection parameters).
    ///
    /// Whatever the actor answers is returned as is, whatever its status. Errors from the
    /// gateway itself (responses with `x-rivet-error`) are returned as
    /// [`ClientError::Remote`], after the retries of [`ActorHandle::action`].
    pub async fn fetch(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<FetchResponse, ClientError> {
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::InvalidRequest {
                reason: format!("invalid method {method:?}: {e}"),
            })?;
        let body = body.into();
        let rest = raw_path("request", path);
        self.with_retries(Retries::All, |id| {
            self.send_raw(id, method.clone(), &rest, headers, body.clone())
        })
        .await
    }

    async fn send_raw(
        &self,
        actor_id: String,
        method: Method,
        rest: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<FetchResponse, ClientError> {
        let inner = &self.client.inner;
        let path = self.gateway_path(&actor_id, rest);
        let mut all: Vec<(&str, String)> = headers
            .iter()
            .map(|(name, value)| (*name, value.to_string()))
            .collect();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
        {
            all.push(("user-agent", USER_AGENT.to_string()));
        }
        self.push_gateway_headers(&mut all);
        let request = Outgoing {
            method,
            path: &path,
            headers: &all,
            body,
        };
        let response = inner.http.send(request, inner.timeout).await?;
        if response.header("x-rivet-error").is_some() {
            if let Some(error) = json_error_body(response.status, &response.body) {
                return Err(error);
            }
        }
        Ok(FetchResponse::from_raw(response))
    }

    /// Opens a raw WebSocket to the actor's `onWebSocket` handler
    /// (`{base}/websocket/{path}`, §7) with subprotocols `rivet`, `rivet_encoding.bare` and
    /// the connection parameters. Frames are the application's own.
    ///
    /// The gateway accepts the upgrade before it reaches the actor, so an unreachable actor
    /// shows up as a `1011 group.code` close on the socket, not as an error here.
    pub async fn websocket(&self, path: &str) -> Result<RawWebSocket, ClientError> {
        let id = self.resolve().await?;
        let full = self.gateway_path(&id, &raw_path("websocket", path));
        let protocols = ws::subprotocols("bare", self.params_json());
        let socket = ws::open(
            self.endpoint(),
            &full,
            &protocols,
            USER_AGENT,
            self.timeout(),
        )
        .await?;
        Ok(RawWebSocket::new(socket))
    }

    /// Opens a realtime connection to the actor (`{base}/connect`, §6) in the client's
    /// encoding, with this handle's connection parameters. Returns at once: the connection
    /// is established in the background (see [`Connection::wait_connected`]), reconnects
    /// when an established socket drops, and closes when [`Connection::close`] is called or
    /// the last clone of the [`Connection`] is dropped.
    ///
    /// Must be called within a Tokio runtime.
    pub fn connect(&self) -> Connection {
        crate::conn::spawn(self.clone())
    }
}

/// Runs `op` again on transient lifecycle and gateway failures (§9.3): 5 attempts in all,
/// 25 → 200 ms apart.
async fn lifecycle_retries<T, F, Fut>(retries: Retries, mut op: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut retry = 0;
    loop {
        match op().await {
            Err(e)
                if retries == Retries::All
                    && retry + 1 < retry::LIFECYCLE_ATTEMPTS
                    && e.remote().is_some_and(retry::is_lifecycle_retry) =>
            {
                tracing::debug!(error = %e, retry, "transient gateway failure; retrying");
                tokio::time::sleep(retry::lifecycle_delay(retry)).await;
                retry += 1;
            }
            other => return other,
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

    #[test]
    fn builds_raw_paths_like_the_npm_client() {
        assert_eq!(raw_path("request", ""), "/request/");
        assert_eq!(raw_path("request", "/hello?x=1"), "/request/hello?x=1");
        assert_eq!(raw_path("request", "a/b"), "/request/a/b");
        assert_eq!(raw_path("websocket", "/chat"), "/websocket/chat");
        assert_eq!(raw_path("websocket", "?room=1"), "/websocket/?room=1");
    }

    #[test]
    fn builds_gateway_paths() {
        let client = Client::builder("http://127.0.0.1:1").build().unwrap();
        let handle = client.get_for_id("counter", "abc");
        assert_eq!(
            handle.gateway_path("abc", "/connect"),
            "/gateway/abc/connect"
        );
        let client = Client::builder("http://127.0.0.1:1")
            .token("t/k")
            .build()
            .unwrap();
        let handle = client.get_for_id("counter", "abc");
        assert_eq!(
            handle.gateway_path("abc", "/action/a%20b"),
            "/gateway/abc@t%2Fk/action/a%20b"
        );
    }

    #[tokio::test]
    async fn lifecycle_retries_stop_after_five_attempts_and_only_for_transient_codes() {
        let transient = || {
            ClientError::Remote(Box::new(RemoteError {
                group: "guard".to_string(),
                code: "service_unavailable".to_string(),
                message: String::new(),
                metadata: None,
                actor: None,
                status: Some(503),
            }))
        };
        let mut calls = 0;
        let result: Result<(), _> = lifecycle_retries(Retries::All, || {
            calls += 1;
            std::future::ready(Err(transient()))
        })
        .await;
        assert!(result.unwrap_err().is("guard", "service_unavailable"));
        assert_eq!(calls, 5);

        let mut calls = 0;
        let result: Result<(), _> = lifecycle_retries(Retries::Once, || {
            calls += 1;
            std::future::ready(Err(transient()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);

        let mut calls = 0;
        let result: Result<u8, _> = lifecycle_retries(Retries::All, || {
            calls += 1;
            std::future::ready(if calls < 3 { Err(transient()) } else { Ok(7) })
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
    }
}
