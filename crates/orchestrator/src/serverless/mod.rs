//! Serverless pools (engine-api.md §11): no permanent host; for every allocation the engine
//! POSTs `{url}/start` to the application, which answers with an event stream and connects an
//! actor host for the started actor. The engine also polls `{url}/metadata` for the pool's
//! protocol version and actor names.
//!
//! In the lifecycle a serverless start is allocated to a stand-in host
//! ([`crate::lifecycle::HostKey::serverless`]); the first host of the pool that reports the
//! generation becomes its host. A failed request steps [`Input::StartFailed`], so the actor
//! backs off and retries, and the failure is kept as the pool's `runner_pool_error`.

pub mod http;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use rivet_envoy_protocol::{self as proto, ProtocolVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actor::{self, decode, encode};
use crate::error::DataError;
use crate::id::Id;
use crate::lifecycle::{ActorError, Input, Phase};
use crate::runner_config::{self, Kind, Serverless};
use crate::shell::Shell;
use crate::{envoy, keys, namespace};
use http::{HttpError, SseParser, Target};

/// `user-agent` of every request to the application.
pub const USER_AGENT: &str = "RivetEngine/2.3.19";
/// Default metadata poll period.
pub const METADATA_POLL: Duration = Duration::from_secs(5);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
const METADATA_LIMIT: usize = 1024 * 1024;
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a pool's application could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct PoolError {
    /// What went wrong, for people.
    pub message: String,
    /// `request_failed`, `invalid_request`, `bad_status`, `bad_content_type`, `stream_ended`,
    /// `application_error`.
    pub kind: String,
}

impl PoolError {
    fn new(kind: &str, message: impl Into<String>) -> PoolError {
        PoolError {
            message: message.into(),
            kind: kind.to_string(),
        }
    }

    fn request(error: &HttpError) -> PoolError {
        tracing::debug!(%error, "serverless request failed");
        match error {
            // Say why when the URL itself is the problem (e.g. https in this build).
            HttpError::Url { .. } => PoolError::new("request_failed", error.to_string()),
            _ => PoolError::new("request_failed", "failed to reach serverless endpoint"),
        }
    }

    /// The actor's `error` for this failure.
    pub fn actor_error(&self) -> ActorError {
        ActorError::RunnerPoolError {
            message: self.message.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// What `{url}/metadata` reported.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMetadata {
    /// The application's rivetkit version.
    pub version: String,
    /// Its envoy protocol version.
    pub envoy_protocol_version: Option<u16>,
    /// Actor types with their metadata.
    pub actor_names: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataBody {
    version: Option<String>,
    envoy_protocol_version: Option<u16>,
    #[serde(default)]
    actor_names: BTreeMap<String, ActorNameBody>,
}

#[derive(Deserialize)]
struct ActorNameBody {
    #[serde(default)]
    metadata: Value,
}

fn builder(
    method: &str,
    target: &Target,
    path: &str,
    headers: &BTreeMap<String, String>,
) -> hyper::http::request::Builder {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", target.authority.as_str())
        .header("user-agent", USER_AGENT);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request
}

/// GETs `{url}/metadata` with the pool's headers.
pub async fn fetch_metadata(
    url: &str,
    headers: &BTreeMap<String, String>,
) -> Result<PoolMetadata, PoolError> {
    let target = Target::parse(url).map_err(|e| PoolError::request(&e))?;
    let request = builder("GET", &target, &target.path_for("metadata"), headers)
        .body(Full::new(Bytes::new()))
        .map_err(|e| PoolError::new("invalid_request", e.to_string()))?;
    let response = http::send(url, &target, request, METADATA_TIMEOUT)
        .await
        .map_err(|e| PoolError::request(&e))?;
    let status = response.status();
    let body = http::read_body(url, response.into_body(), METADATA_LIMIT, METADATA_TIMEOUT)
        .await
        .map_err(|e| PoolError::request(&e))?;
    let invalid = || PoolError::new("invalid_request", "invalid serverless metadata request");
    if !status.is_success() {
        return Err(invalid());
    }
    let body: MetadataBody = serde_json::from_slice(&body).map_err(|_| invalid())?;
    Ok(PoolMetadata {
        version: body.version.ok_or_else(invalid)?,
        envoy_protocol_version: body.envoy_protocol_version,
        actor_names: body
            .actor_names
            .into_iter()
            .map(|(name, n)| (name, n.metadata))
            .collect(),
    })
}

/// One serverless start to perform after a commit.
#[derive(Debug, Clone)]
pub(crate) struct ServerlessStart {
    pub ns: Id,
    pub pool: String,
    pub actor: Id,
    pub generation: u32,
    pub command: proto::CommandWrapper,
}

fn pool_error_key(ns: Id, pool: &str) -> Vec<u8> {
    rivet_store::tuple::pack(&("pool_error", ns, pool))
}

/// The pool's current failure, if any (for `GET /runner-configs`).
pub async fn pool_error(
    tx: &rivet_store::Tx,
    ns: Id,
    pool: &str,
) -> Result<Option<PoolError>, DataError> {
    match tx.get(&pool_error_key(ns, pool)).await? {
        Some(bytes) => decode(&bytes, "pool error").map(Some),
        None => Ok(None),
    }
}

impl Shell {
    async fn set_pool_error(&self, ns: Id, pool: &str, error: Option<&PoolError>) {
        let result = self
            .db()
            .txn(|tx| async move {
                match error {
                    Some(error) => {
                        tx.set(&pool_error_key(ns, pool), &encode(error, "pool error")?)?
                    }
                    None => tx.clear(&pool_error_key(ns, pool)),
                }
                Ok::<_, DataError>(())
            })
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, pool, "cannot record the pool's state");
        }
    }

    async fn serverless_config(&self, ns: Id, pool: &str) -> Result<Option<Serverless>, DataError> {
        let datacenter = self.config().datacenter.clone();
        let config = self
            .db()
            .txn(|tx| {
                let datacenter = datacenter.clone();
                async move { runner_config::get_tx(&tx, ns, pool, &datacenter).await }
            })
            .await?;
        Ok(config.and_then(|c| match c.kind {
            Kind::Serverless(s) => Some(s),
            Kind::Normal(_) => None,
        }))
    }

    /// Fetches a serverless pool's metadata and records its protocol version and actor names
    /// (or its failure). `Ok(None)` when the pool is not serverless.
    pub async fn refresh_pool_metadata(
        &self,
        ns: Id,
        pool: &str,
    ) -> Result<Option<Result<PoolMetadata, PoolError>>, DataError> {
        let Some(config) = self.serverless_config(ns, pool).await? else {
            return Ok(None);
        };
        let result = fetch_metadata(&config.url, &config.headers).await;
        match &result {
            Ok(metadata) => {
                self.db()
                    .txn(|tx| async move {
                        if let Some(version) = metadata.envoy_protocol_version {
                            envoy::set_pool_protocol(&tx, ns, pool, version)?;
                        }
                        let space = keys::actor_names(ns);
                        for (name, meta) in &metadata.actor_names {
                            tx.set(&space.pack(&(name.as_str(),)), &encode(meta, "actor name")?)?;
                        }
                        tx.clear(&pool_error_key(ns, pool));
                        Ok::<_, DataError>(())
                    })
                    .await?;
            }
            Err(error) => self.set_pool_error(ns, pool, Some(error)).await,
        }
        Ok(Some(result))
    }

    /// Polls every serverless pool's metadata, forever (until the shell stops).
    pub(crate) async fn metadata_poller(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(METADATA_POLL) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(error) = self.poll_all_metadata().await {
                tracing::debug!(%error, "serverless metadata poll failed");
            }
        }
    }

    async fn poll_all_metadata(&self) -> Result<(), DataError> {
        let namespaces = namespace::list(self.db(), namespace::ListQuery::default()).await?;
        for ns in namespaces {
            let id = ns.id()?;
            let pools = runner_config::list(
                self.db(),
                id,
                runner_config::ListQuery {
                    limit: Some(usize::MAX),
                    variant: Some("serverless".into()),
                    pools: Vec::new(),
                },
            )
            .await?;
            for (pool, _) in pools {
                self.refresh_pool_metadata(id, &pool).await?;
            }
        }
        Ok(())
    }

    /// Performs one serverless start; a failure is recorded on the pool and the actor. Boxed:
    /// the shell spawns it from `perform`, which it calls again, and a named future type
    /// breaks that cycle for the `Send` check.
    pub(crate) fn serverless_start(
        self,
        start: ServerlessStart,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let result = self.run_serverless_start(&start).await;
            let error = match result {
                Ok(()) => return,
                Err(Ok(error)) => error,
                Err(Err(error)) => {
                    tracing::error!(%error, actor = %start.actor, "serverless start failed internally");
                    PoolError::new("internal_error", "internal error")
                }
            };
            tracing::warn!(actor = %start.actor, pool = %start.pool, %error, kind = %error.kind, "serverless start failed");
            self.set_pool_error(start.ns, &start.pool, Some(&error))
                .await;
            let input = Input::StartFailed {
                generation: start.generation,
                error: error.actor_error(),
            };
            match self.apply(start.actor, input).await {
                Ok(_) | Err(DataError::Rejected(_)) | Err(DataError::ActorNotFound) => {}
                Err(error) => tracing::warn!(%error, "cannot record the failed start"),
            }
        })
    }

    /// Whether `generation` is still the actor's live generation, and whether it is running.
    async fn live_state(&self, actor: Id, generation: u32) -> Result<Option<bool>, DataError> {
        let record = self
            .db()
            .txn(|tx| async move { actor::load_record(&tx, actor).await })
            .await?;
        Ok(record.and_then(|r| match r.phase {
            Phase::Starting { generation: g, .. } if g == generation => Some(false),
            Phase::Running { generation: g, .. } if g == generation => Some(true),
            Phase::Stopping { generation: g, .. } if g == generation => Some(true),
            _ => None,
        }))
    }

    async fn run_serverless_start(
        &self,
        s: &ServerlessStart,
    ) -> Result<(), Result<PoolError, DataError>> {
        let (ns, pool) = (s.ns, s.pool.as_str());
        let Some(config) = self.serverless_config(ns, pool).await.map_err(Err)? else {
            return Err(Ok(PoolError::new(
                "invalid_request",
                "the pool is no longer serverless",
            )));
        };
        let (namespace, protocol) = self
            .db()
            .txn(|tx| async move {
                Ok::<_, DataError>((
                    namespace::get_by_id_tx(&tx, ns).await?,
                    envoy::pool_protocol(&tx, ns, pool).await?,
                ))
            })
            .await
            .map_err(Err)?;
        let namespace = namespace.ok_or(Err(DataError::NamespaceNotFound))?;
        let protocol = match protocol {
            Some(p) => p,
            None => match self.refresh_pool_metadata(ns, pool).await.map_err(Err)? {
                Some(Ok(metadata)) => metadata.envoy_protocol_version.ok_or_else(|| {
                    Ok(PoolError::new(
                        "invalid_request",
                        "serverless metadata has no envoyProtocolVersion",
                    ))
                })?,
                Some(Err(error)) => return Err(Ok(error)),
                None => {
                    return Err(Ok(PoolError::new(
                        "invalid_request",
                        "the pool is no longer serverless",
                    )))
                }
            },
        };
        let version = ProtocolVersion::try_from(protocol).map_err(|_| {
            Ok(PoolError::new(
                "invalid_request",
                format!("unsupported protocol version {protocol}"),
            ))
        })?;
        let mut command = s.command.clone();
        // The reference numbers the start inside a serverless payload 0.
        command.checkpoint.index = 0;
        let body = proto::encode_serverless_start(version, vec![command])
            .map_err(|e| Ok(PoolError::new("invalid_request", e.to_string())))?;

        let target = Target::parse(&config.url).map_err(|e| Ok(PoolError::request(&e)))?;
        let mut endpoint = self.config().public_url.clone();
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        let mut request = builder("POST", &target, &target.path_for("start"), &config.headers)
            .header("x-rivet-endpoint", endpoint)
            .header("x-rivet-pool-name", pool)
            .header("x-rivet-namespace-name", namespace.name.as_str())
            .header("accept", "text/event-stream")
            .header("content-length", body.len());
        if let Some(token) = &self.config().admin_token {
            request = request.header("x-rivet-token", token.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Ok(PoolError::new("invalid_request", e.to_string())))?;
        let response = http::send(&config.url, &target, request, START_TIMEOUT)
            .await
            .map_err(|e| Ok(PoolError::request(&e)))?;
        if !response.status().is_success() {
            return Err(Ok(PoolError::new(
                "bad_status",
                format!("serverless start answered {}", response.status()),
            )));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type.starts_with("text/event-stream") {
            return Err(Ok(PoolError::new(
                "bad_content_type",
                format!("serverless start answered content-type {content_type:?}"),
            )));
        }
        self.set_pool_error(ns, pool, None).await;
        tracing::debug!(actor = %s.actor, pool, "serverless start accepted");

        let lifespan = Duration::from_secs(config.request_lifespan);
        let grace = Duration::from_secs(config.drain_grace_period);
        let lifespan_end = tokio::time::sleep(lifespan);
        tokio::pin!(lifespan_end);
        let mut draining: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let mut body = response.into_body();
        let mut parser = SseParser::default();
        loop {
            tokio::select! {
                frame = body.frame() => {
                    let frame = match frame {
                        Some(Ok(frame)) => frame,
                        Some(Err(_)) | None => break,
                    };
                    let Some(data) = frame.data_ref() else { continue };
                    for event in parser.feed(data) {
                        match event.event.as_str() {
                            "ping" => {}
                            "stopping" => {
                                tracing::debug!(actor = %s.actor, "serverless host is stopping");
                                return Ok(());
                            }
                            _ if !event.data.is_empty() => {
                                // `{group, code, message}` from the application.
                                let message = serde_json::from_str::<Value>(&event.data)
                                    .ok()
                                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                                    .unwrap_or(event.data);
                                if self.live_state(s.actor, s.generation).await.map_err(Err)? == Some(false) {
                                    return Err(Ok(PoolError::new("application_error", message)));
                                }
                                tracing::warn!(actor = %s.actor, %message, "serverless application reported an error");
                            }
                            _ => {}
                        }
                    }
                }
                _ = &mut lifespan_end, if draining.is_none() => {
                    // The request's time is up: the actor goes away and starts again elsewhere.
                    if self.live_state(s.actor, s.generation).await.map_err(Err)?.is_some() {
                        match self.apply(s.actor, Input::Reschedule).await {
                            Ok(_) | Err(DataError::Rejected(_)) => {}
                            Err(e) => return Err(Err(e)),
                        }
                    }
                    draining = Some(Box::pin(tokio::time::sleep(grace)));
                }
                _ = async { if let Some(d) = draining.as_mut() { d.await } }, if draining.is_some() => {
                    return Ok(());
                }
            }
        }
        // The stream ended early: a start that never ran failed.
        if self.live_state(s.actor, s.generation).await.map_err(Err)? == Some(false) {
            return Err(Ok(PoolError::new(
                "stream_ended",
                "serverless start stream ended before the actor ran",
            )));
        }
        Ok(())
    }
}
