//! Runner configs: how a pool of actor hosts runs, per namespace, pool and datacenter.
//!
//! Key layout: `("ns", "runner_config", Id(namespace uuid), namespace label, pool, datacenter)`
//! → the stored [`RunnerConfig`] as JSON (request form, defaults already filled in). A pool's
//! datacenters are adjacent, and pools list in name order.

use std::collections::BTreeMap;

use rivet_store::tuple::{self, Subspace};
use rivet_store::{Db, RangeOptions, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DataError;
use crate::id::Id;

/// Fields shared by both kinds: how a draining host's actors are evicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eviction {
    /// Drain older hosts when a host with a higher version connects.
    #[serde(default = "default_true")]
    pub drain_on_version_upgrade: bool,
    /// Seconds before evictions start.
    #[serde(default)]
    pub actor_eviction_delay: u64,
    /// Seconds over which evictions are spread.
    #[serde(default)]
    pub actor_eviction_period: u64,
    /// Actors evicted per second.
    #[serde(default = "default_rate")]
    pub actor_eviction_rate: f64,
}

impl Default for Eviction {
    fn default() -> Self {
        Eviction {
            drain_on_version_upgrade: true,
            actor_eviction_delay: 0,
            actor_eviction_period: 0,
            actor_eviction_rate: 1.0,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_rate() -> f64 {
    1.0
}

/// A pool of permanently connected hosts. Unknown fields are ignored, as the reference does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normal {
    /// Eviction pacing.
    #[serde(flatten)]
    pub eviction: Eviction,
}

/// A pool whose hosts the engine starts by calling the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Serverless {
    /// Base URL of the application's runner endpoint.
    pub url: String,
    /// Headers sent with every call.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Seconds one start request lives.
    pub request_lifespan: u64,
    /// Seconds a host gets to drain; must be below `request_lifespan`.
    #[serde(default = "default_drain_grace_period")]
    pub drain_grace_period: u64,
    /// Most actors running at once on the pool.
    #[serde(default)]
    pub max_concurrent_actors: Option<u64>,
    /// Metadata poll interval in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_poll_interval: Option<u64>,
    /// Deprecated; echoed back.
    #[serde(default = "default_one")]
    pub slots_per_runner: u64,
    /// Deprecated; echoed back.
    #[serde(default)]
    pub min_runners: u64,
    /// Deprecated; echoed back.
    #[serde(default = "default_max_runners")]
    pub max_runners: u64,
    /// Deprecated; echoed back.
    #[serde(default)]
    pub runners_margin: u64,
    /// Eviction pacing.
    #[serde(flatten)]
    pub eviction: Eviction,
}

fn default_drain_grace_period() -> u64 {
    1800
}

fn default_one() -> u64 {
    1
}

fn default_max_runners() -> u64 {
    1000
}

/// The kind of a runner config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Permanently connected hosts.
    Normal(Normal),
    /// Hosts started on demand.
    Serverless(Serverless),
}

/// One datacenter's config for a pool, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerConfig {
    /// Normal or serverless.
    pub kind: Kind,
    /// Free-form JSON the caller attached.
    pub metadata: Option<Value>,
}

/// Top-level keys a runner config object may hold.
const FIELDS: &[&str] = &[
    "normal",
    "serverless",
    "metadata",
    "drain_on_version_upgrade",
];

impl RunnerConfig {
    /// Parses the request form (`{"normal":{…}}` or `{"serverless":{…}}` plus `metadata` and
    /// the legacy top-level `drain_on_version_upgrade`), fills defaults in and validates.
    ///
    /// `Err(Ok(text))` is a malformed body (`api.bad_request` reason text); `Err(Err(e))` a
    /// well-formed but invalid config (`runner_config.invalid`).
    pub fn from_request(value: Value) -> Result<RunnerConfig, Result<String, DataError>> {
        let Value::Object(map) = value else {
            return Err(Ok(format!(
                "invalid type: {}, expected struct RunnerConfig",
                kind_of(&value)
            )));
        };
        let mut kind = None;
        let mut metadata = None;
        let mut legacy_drain = None;
        let mut unknown = None;
        for (key, value) in map {
            match key.as_str() {
                "normal" => {
                    let normal: Normal =
                        serde_json::from_value(value).map_err(|e| Ok(e.to_string()))?;
                    kind = Some(Kind::Normal(normal));
                }
                "serverless" => {
                    let serverless: Serverless =
                        serde_json::from_value(value).map_err(|e| Ok(e.to_string()))?;
                    kind = Some(Kind::Serverless(serverless));
                }
                "metadata" => metadata = Some(value),
                "drain_on_version_upgrade" => {
                    legacy_drain = Some(
                        serde_json::from_value::<Option<bool>>(value)
                            .map_err(|e| Ok(e.to_string()))?,
                    )
                }
                _ => {
                    unknown.get_or_insert(key);
                }
            }
        }
        let Some(mut kind) = kind else {
            return Err(Ok(
                "no variant of enum RunnerConfigKind found in flattened data".to_string(),
            ));
        };
        if let Some(field) = unknown {
            return Err(Ok(unknown_field(&field, FIELDS)));
        }
        if let Some(Some(drain)) = legacy_drain {
            // The legacy top-level flag (npm sends it) applies to the kind.
            match &mut kind {
                Kind::Normal(n) => n.eviction.drain_on_version_upgrade = drain,
                Kind::Serverless(s) => s.eviction.drain_on_version_upgrade = drain,
            }
        }
        if let Kind::Serverless(s) = &mut kind {
            if s.drain_grace_period >= s.request_lifespan {
                return Err(Err(DataError::RunnerConfigInvalid {
                    reason: format!(
                        "`drain_grace_period` must be less than `request_lifespan` ({}s >= {}s)",
                        s.drain_grace_period, s.request_lifespan
                    ),
                }));
            }
            if s.max_concurrent_actors.is_none() {
                s.max_concurrent_actors = Some(s.max_runners);
            }
        }
        Ok(RunnerConfig { kind, metadata })
    }

    /// `normal` or `serverless`.
    pub fn variant(&self) -> &'static str {
        match self.kind {
            Kind::Normal(_) => "normal",
            Kind::Serverless(_) => "serverless",
        }
    }

    /// The stored form.
    fn to_stored(&self) -> Value {
        let mut map = Map::new();
        if let Ok(Value::Object(kind)) = serde_json::to_value(&self.kind) {
            map.extend(kind);
        }
        if let Some(metadata) = &self.metadata {
            map.insert("metadata".to_string(), metadata.clone());
        }
        Value::Object(map)
    }

    fn from_stored(bytes: &[u8]) -> Result<RunnerConfig, DataError> {
        let corrupt = |source| DataError::Corrupt {
            what: "runner config",
            source,
        };
        let mut map: Map<String, Value> = serde_json::from_slice(bytes).map_err(corrupt)?;
        let metadata = map.remove("metadata");
        let kind: Kind = serde_json::from_value(Value::Object(map)).map_err(corrupt)?;
        Ok(RunnerConfig { kind, metadata })
    }

    /// The response form: the stored config plus `protocol_version` (null until a host or the
    /// serverless metadata reports one). Serializes with the kind's fields in the reference's
    /// order.
    pub fn response(&self, protocol_version: Option<u16>) -> RunnerConfigResponse<'_> {
        RunnerConfigResponse {
            kind: &self.kind,
            metadata: self.metadata.as_ref(),
            protocol_version,
            runner_pool_error: None,
        }
    }

    /// [`RunnerConfig::response`] as a JSON value.
    pub fn to_response(&self, protocol_version: Option<u16>) -> Value {
        serde_json::to_value(self.response(protocol_version)).unwrap_or(Value::Null)
    }
}

/// The response form of a runner config (see [`RunnerConfig::response`]).
#[derive(Debug, Serialize)]
pub struct RunnerConfigResponse<'a> {
    /// `{"normal": {...}}` or `{"serverless": {...}}`.
    #[serde(flatten)]
    pub kind: &'a Kind,
    /// The caller's metadata, omitted when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a Value>,
    /// The actor-host protocol last seen for the pool.
    pub protocol_version: Option<u16>,
    /// Why the pool is failing (serverless), omitted while it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_pool_error: Option<Value>,
}

/// serde's text for an unknown field, so reasons read like the reference's.
pub fn unknown_field(field: &str, expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    match quoted.as_slice() {
        [] => format!("unknown field `{field}`, there are no fields"),
        [one] => format!("unknown field `{field}`, expected {one}"),
        [a, b] => format!("unknown field `{field}`, expected {a} or {b}"),
        all => format!(
            "unknown field `{field}`, expected one of {}",
            all.join(", ")
        ),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "map",
    }
}

fn namespace_space(namespace: Id) -> Subspace {
    Subspace::new(&(
        "ns",
        "runner_config",
        tuple::Id(namespace.uuid()),
        i64::from(namespace.label()),
    ))
}

/// Replaces a pool's configs in `namespace`: datacenters absent from `configs` lose theirs.
/// Returns whether any datacenter entry was written (`endpoint_config_changed`).
pub async fn upsert(
    db: &Db,
    namespace: Id,
    pool: &str,
    configs: BTreeMap<String, RunnerConfig>,
) -> Result<bool, DataError> {
    let space = namespace_space(namespace).subspace(&(pool,));
    let stored = configs
        .iter()
        .map(|(dc, config)| {
            serde_json::to_vec(&config.to_stored())
                .map(|bytes| (space.pack(&(dc.as_str(),)), bytes))
                .map_err(|source| DataError::Corrupt {
                    what: "runner config",
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let written = !stored.is_empty();
    db.txn(move |tx| {
        let space = space.clone();
        let stored = stored.clone();
        async move {
            let (begin, end) = space.range();
            tx.clear_range(&begin, &end);
            for (key, value) in &stored {
                tx.set(key, value)?;
            }
            Ok::<_, DataError>(())
        }
    })
    .await?;
    tracing::info!(%namespace, pool, written, "runner config replaced");
    Ok(written)
}

/// Deletes a pool's configs in every datacenter (nothing happens for an unknown pool).
pub async fn delete(db: &Db, namespace: Id, pool: &str) -> Result<(), DataError> {
    let space = namespace_space(namespace).subspace(&(pool,));
    db.txn(move |tx| {
        let space = space.clone();
        async move {
            let (begin, end) = space.range();
            tx.clear_range(&begin, &end);
            Ok::<_, DataError>(())
        }
    })
    .await
}

/// Reads one pool's config in one datacenter inside a transaction.
pub async fn get_tx(
    tx: &Tx,
    namespace: Id,
    pool: &str,
    datacenter: &str,
) -> Result<Option<RunnerConfig>, DataError> {
    let key = namespace_space(namespace).pack(&(pool, datacenter));
    match tx.get(&key).await? {
        Some(bytes) => RunnerConfig::from_stored(&bytes).map(Some),
        None => Ok(None),
    }
}

/// What `GET /runner-configs` filters on.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Most pools to return.
    pub limit: Option<usize>,
    /// Only configs of this variant (`normal` or `serverless`).
    pub variant: Option<String>,
    /// Only these pools (empty: all).
    pub pools: Vec<String>,
}

/// Default number of pools per page.
pub const DEFAULT_LIMIT: usize = 100;

/// A pool's configs by datacenter name.
pub type PoolConfigs = BTreeMap<String, RunnerConfig>;

/// Lists pools of `namespace` in name order, each with its per-datacenter configs.
pub async fn list(
    db: &Db,
    namespace: Id,
    query: ListQuery,
) -> Result<Vec<(String, PoolConfigs)>, DataError> {
    let space = namespace_space(namespace);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    let pairs = db
        .txn(move |tx| {
            let space = space.clone();
            async move {
                let (begin, end) = space.range();
                tx.get_range(&begin, &end, RangeOptions::new()).await
            }
        })
        .await?;
    let space = namespace_space(namespace);
    let mut out: Vec<(String, PoolConfigs)> = Vec::new();
    for (key, value) in pairs {
        let elements = space.unpack(&key)?;
        let (Some(tuple::Element::String(pool)), Some(tuple::Element::String(dc))) =
            (elements.first(), elements.get(1))
        else {
            continue;
        };
        if !query.pools.is_empty() && !query.pools.contains(pool) {
            continue;
        }
        let config = RunnerConfig::from_stored(&value)?;
        if query
            .variant
            .as_deref()
            .is_some_and(|v| v != config.variant())
        {
            continue;
        }
        match out.last_mut() {
            Some((last, configs)) if last == pool => {
                configs.insert(dc.clone(), config);
            }
            _ => {
                if out.len() == limit {
                    break;
                }
                out.push((pool.clone(), BTreeMap::from([(dc.clone(), config)])));
            }
        }
    }
    Ok(out)
}
