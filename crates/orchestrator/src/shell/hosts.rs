//! Host (envoy) sessions: connect, metadata, pongs, acks, graceful drain and disconnect, each
//! a store transaction, with host-level news fanned out to the host's actors.

use std::collections::BTreeMap;
use std::time::Duration;

use rivet_envoy_protocol::{self as proto, ProtocolVersion};
use rivet_store::RangeOptions;
use serde_json::Value;

use super::{host_subject, now_ms, HostSignal, Shell};
use crate::envoy::{self, EnvoyRecord};
use crate::error::DataError;
use crate::id::Id;
use crate::keys;
use crate::lifecycle::{HostKey, Input, Rejection};
use crate::runner_config::{self, Kind};

/// A socket that just passed validation.
#[derive(Debug, Clone)]
pub struct HostConnect {
    /// Namespace id.
    pub namespace: Id,
    /// Host key.
    pub envoy_key: String,
    /// Pool.
    pub pool: String,
    /// Application version.
    pub version: u32,
    /// Socket protocol version.
    pub protocol_version: u16,
    /// Unique id of this socket (evictions name it).
    pub connection: String,
}

/// What a new session starts with.
#[derive(Debug, Clone)]
pub struct HostSession {
    /// Un-acknowledged commands to re-send right after Init, in order.
    pub replay: Vec<proto::CommandWrapper>,
}

/// Actors per transaction when a host's news is fanned out.
const FAN_OUT_CHUNK: usize = 64;

impl Shell {
    /// Registers a connected socket for its key. An older socket holding the key is told to
    /// close (`ws.eviction`); the key's actors resume and its stored commands are returned for
    /// replay. The caller subscribes to [`host_subject`] before calling this.
    pub async fn host_connected(&self, c: &HostConnect) -> Result<HostSession, DataError> {
        let previous = self
            .inner
            .db
            .txn(|tx| async move {
                let now = now_ms();
                let old = envoy::load(&tx, c.namespace, &c.envoy_key).await?;
                if let Some(old) = &old {
                    if old.pool != c.pool {
                        tx.clear(
                            &keys::pool_envoys(c.namespace, &old.pool)
                                .pack(&(old.envoy_key.as_str(),)),
                        );
                    }
                }
                let record = EnvoyRecord {
                    envoy_key: c.envoy_key.clone(),
                    pool: c.pool.clone(),
                    version: c.version,
                    protocol_version: c.protocol_version,
                    create_ts: old.as_ref().map_or(now, |o| o.create_ts),
                    last_ping_ts: now,
                    last_rtt: 0,
                    connection: Some(c.connection.clone()),
                    draining: false,
                    metadata: old.as_ref().and_then(|o| o.metadata.clone()),
                };
                envoy::save(&tx, c.namespace, &record)?;
                envoy::set_pool_protocol(&tx, c.namespace, &c.pool, c.protocol_version)?;
                Ok::<_, DataError>(old.and_then(|o| o.connection))
            })
            .await?;
        if let Some(previous) = previous.filter(|p| *p != c.connection) {
            let signal = HostSignal::Evict(previous).encode();
            if let Err(error) = self
                .inner
                .bus
                .publish(&host_subject(c.namespace, &c.envoy_key), signal)
                .await
            {
                tracing::warn!(%error, envoy_key = %c.envoy_key, "cannot evict the older socket");
            }
        }
        let host = HostKey(c.envoy_key.clone());
        self.fan_out(c.namespace, &c.envoy_key, |_| Input::HostReconnected {
            host: host.clone(),
        })
        .await?;
        self.drain_older_versions(c).await?;
        let replay = self.pending_commands(c.namespace, &c.envoy_key).await?;
        tracing::info!(
            envoy_key = %c.envoy_key,
            pool = %c.pool,
            version = c.version,
            protocol_version = c.protocol_version,
            replayed = replay.len(),
            "actor host connected"
        );
        Ok(HostSession { replay })
    }

    /// With `drain_on_version_upgrade` (the default), a host of a higher version drains the
    /// pool's older hosts: their actors move to the new version (§8.6).
    async fn drain_older_versions(&self, c: &HostConnect) -> Result<(), DataError> {
        let datacenter = self.inner.config.datacenter.clone();
        let older = self
            .inner
            .db
            .txn(|tx| {
                let datacenter = datacenter.clone();
                async move {
                    let drain = match runner_config::get_tx(&tx, c.namespace, &c.pool, &datacenter)
                        .await?
                        .map(|config| config.kind)
                    {
                        Some(Kind::Normal(n)) => n.eviction.drain_on_version_upgrade,
                        Some(Kind::Serverless(s)) => s.eviction.drain_on_version_upgrade,
                        None => false,
                    };
                    if !drain {
                        return Ok::<_, DataError>(Vec::new());
                    }
                    let candidates = envoy::candidates(&tx, c.namespace, &c.pool).await?;
                    Ok(candidates
                        .into_iter()
                        .filter(|h| h.connected && !h.draining && h.version < c.version)
                        .map(|h| h.key.0)
                        .collect())
                }
            })
            .await?;
        for key in older {
            tracing::info!(envoy_key = %key, newer = %c.envoy_key, "draining an older host version");
            self.host_stopping(c.namespace, &key).await?;
        }
        Ok(())
    }

    /// Un-acknowledged commands of a host, in (actor, generation, index) order.
    pub async fn pending_commands(
        &self,
        ns: Id,
        envoy_key: &str,
    ) -> Result<Vec<proto::CommandWrapper>, DataError> {
        let space = keys::envoy_commands(ns, envoy_key);
        let rows = self
            .inner
            .db
            .txn(|tx| {
                let (begin, end) = space.range();
                async move {
                    tx.get_range(&begin, &end, RangeOptions::new().snapshot())
                        .await
                }
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (_, bytes) in rows {
            match proto::decode::<proto::ToEnvoy>(ProtocolVersion::V8, &bytes) {
                Ok(proto::ToEnvoy::Commands(commands)) => out.extend(commands),
                Ok(_) | Err(_) => {
                    tracing::warn!(envoy_key, "skipping an undecodable stored command")
                }
            }
        }
        Ok(out)
    }

    /// The host's metadata message: actor names for `GET /actors/names` and the host JSON.
    pub async fn host_metadata(
        &self,
        ns: Id,
        envoy_key: &str,
        names: &BTreeMap<String, Value>,
        metadata: Option<Value>,
    ) -> Result<(), DataError> {
        self.inner
            .db
            .txn(|tx| {
                let metadata = metadata.clone();
                async move {
                    if let Some(mut record) = envoy::load(&tx, ns, envoy_key).await? {
                        record.metadata = metadata;
                        envoy::save(&tx, ns, &record)?;
                    }
                    let space = keys::actor_names(ns);
                    for (name, meta) in names {
                        let bytes = crate::actor::encode(meta, "actor name")?;
                        tx.set(&space.pack(&(name.as_str(),)), &bytes)?;
                    }
                    Ok::<_, DataError>(())
                }
            })
            .await
    }

    /// A pong: the host is alive (eligible for allocations for a while) and its round trip.
    pub async fn host_pong(
        &self,
        ns: Id,
        envoy_key: &str,
        connection: &str,
        ping_ts: i64,
    ) -> Result<(), DataError> {
        self.inner
            .db
            .txn(|tx| async move {
                if let Some(mut record) = envoy::load(&tx, ns, envoy_key).await? {
                    if record.connection.as_deref() == Some(connection) {
                        let now = now_ms();
                        record.last_ping_ts = now;
                        record.last_rtt = now.saturating_sub(ping_ts).max(0);
                        envoy::save(&tx, ns, &record)?;
                    }
                }
                Ok::<_, DataError>(())
            })
            .await
    }

    /// `ToRivetAckCommands`: forgets every stored command up to each checkpoint.
    pub async fn ack_commands(
        &self,
        ns: Id,
        envoy_key: &str,
        checkpoints: &[proto::ActorCheckpoint],
    ) -> Result<(), DataError> {
        let space = keys::envoy_commands(ns, envoy_key);
        self.inner
            .db
            .txn(|tx| {
                let space = space.clone();
                async move {
                    for checkpoint in checkpoints {
                        let Ok(actor) = checkpoint.actor_id.parse::<Id>() else {
                            continue;
                        };
                        let begin = space.pack(&(actor, checkpoint.generation));
                        let end = space.pack(&(
                            actor,
                            checkpoint.generation,
                            checkpoint.index.saturating_add(1),
                        ));
                        tx.clear_range(&begin, &end);
                    }
                    Ok::<_, DataError>(())
                }
            })
            .await
    }

    /// The socket closed. Only the socket that holds the key counts (an evicted one does not);
    /// the host leaves allocation at once and its actors start their lost countdown.
    pub async fn host_disconnected(
        &self,
        ns: Id,
        envoy_key: &str,
        connection: &str,
    ) -> Result<(), DataError> {
        let held = self
            .inner
            .db
            .txn(|tx| async move {
                match envoy::load(&tx, ns, envoy_key).await? {
                    Some(mut record) if record.connection.as_deref() == Some(connection) => {
                        record.connection = None;
                        envoy::save(&tx, ns, &record)?;
                        Ok::<_, DataError>(true)
                    }
                    _ => Ok(false),
                }
            })
            .await?;
        if held {
            tracing::info!(envoy_key, "actor host disconnected");
            let host = HostKey(envoy_key.to_string());
            self.fan_out(ns, envoy_key, |_| Input::HostDisconnected {
                host: host.clone(),
            })
            .await?;
        }
        Ok(())
    }

    /// `ToRivetStopping`: the host leaves allocation and its actors are sent GoingAway, paced by
    /// the pool's eviction settings, then moved elsewhere.
    pub async fn host_stopping(&self, ns: Id, envoy_key: &str) -> Result<(), DataError> {
        let datacenter = self.inner.config.datacenter.clone();
        let eviction = self
            .inner
            .db
            .txn(|tx| {
                let datacenter = datacenter.clone();
                async move {
                    let Some(mut record) = envoy::load(&tx, ns, envoy_key).await? else {
                        return Ok::<_, DataError>(None);
                    };
                    record.draining = true;
                    envoy::save(&tx, ns, &record)?;
                    let config = runner_config::get_tx(&tx, ns, &record.pool, &datacenter).await?;
                    Ok(Some(config.map(|c| match c.kind {
                        Kind::Normal(n) => n.eviction,
                        Kind::Serverless(s) => s.eviction,
                    })))
                }
            })
            .await?;
        let Some(eviction) = eviction else {
            return Ok(());
        };
        let eviction = eviction.unwrap_or_default();
        tracing::info!(envoy_key, "actor host is draining");
        let shell = self.clone();
        let envoy_key = envoy_key.to_string();
        tokio::spawn(async move {
            if eviction.actor_eviction_delay > 0 {
                tokio::time::sleep(Duration::from_secs(eviction.actor_eviction_delay)).await;
            }
            // With a period, `rate` actors per second; without one, all at once.
            let pause = (eviction.actor_eviction_period > 0 && eviction.actor_eviction_rate > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / eviction.actor_eviction_rate));
            let host = HostKey(envoy_key.clone());
            let actors = match shell
                .inner
                .db
                .txn(|tx| {
                    let key = envoy_key.clone();
                    async move { envoy::actors(&tx, ns, &key).await }
                })
                .await
            {
                Ok(actors) => actors,
                Err(error) => {
                    tracing::error!(%error, envoy_key, "cannot list a draining host's actors");
                    return;
                }
            };
            for actor in actors {
                match shell
                    .apply(actor, Input::HostDraining { host: host.clone() })
                    .await
                {
                    Ok(_) | Err(DataError::Rejected(_)) | Err(DataError::ActorNotFound) => {}
                    Err(error) => tracing::warn!(%error, %actor, "cannot evict actor"),
                }
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        });
        Ok(())
    }

    /// Records every host still marked connected as disconnected now. For a store only one
    /// engine process can open (the embedded one): at start-up no socket can be connected, so
    /// hosts of a previous run that died with it (`kill -9`, power loss) start their lost
    /// countdown at once. Requests for their actors then move to live hosts instead of being
    /// tunnelled to a host nobody serves, and a host that reconnects in time keeps its actors.
    pub async fn disconnect_orphaned_hosts(&self) -> Result<usize, DataError> {
        let connected = self.connected_hosts().await?;
        let count = connected.len();
        for (ns, record) in connected {
            if let Some(connection) = &record.connection {
                self.host_disconnected(ns, &record.envoy_key, connection)
                    .await?;
            }
        }
        Ok(count)
    }

    /// Every host record marked connected, with its namespace.
    async fn connected_hosts(&self) -> Result<Vec<(Id, EnvoyRecord)>, DataError> {
        self.inner
            .db
            .txn(|tx| async move {
                let (begin, end) = rivet_store::tuple::Subspace::new(&("envoy",)).range();
                let rows = tx
                    .get_range(&begin, &end, RangeOptions::new().snapshot())
                    .await?;
                let mut connected = Vec::new();
                for (key, bytes) in rows {
                    let record: EnvoyRecord = crate::actor::decode(&bytes, "envoy")?;
                    if record.connected() {
                        let elements = rivet_store::tuple::unpack(&key)?;
                        if let Some(ns) = keys::id_at(&elements, 1) {
                            connected.push((ns, record));
                        }
                    }
                }
                Ok::<_, DataError>(connected)
            })
            .await
    }

    /// Hosts still marked connected whose last pong is older than the lost threshold: their
    /// socket died with an engine node (crash, kill), so no disconnect was ever recorded. They
    /// are marked disconnected and their actors lost, as if the socket had closed then.
    pub async fn sweep_stale_hosts(&self) -> Result<usize, DataError> {
        let now = now_ms();
        let threshold = self.inner.config.lifecycle.lost_threshold;
        let stale: Vec<(Id, EnvoyRecord)> = self
            .connected_hosts()
            .await?
            .into_iter()
            .filter(|(_, record)| now.saturating_sub(record.last_ping_ts) > threshold)
            .collect();
        let count = stale.len();
        for (ns, record) in stale {
            let Some(connection) = record.connection.clone() else {
                continue;
            };
            tracing::warn!(
                envoy_key = %record.envoy_key,
                last_ping_ts = record.last_ping_ts,
                "actor host silent past the lost threshold; its actors are lost"
            );
            // Only if nothing changed meanwhile (a pong, a reconnect).
            let cleared = self
                .inner
                .db
                .txn(|tx| {
                    let (key, connection) = (record.envoy_key.clone(), connection.clone());
                    async move {
                        match envoy::load(&tx, ns, &key).await? {
                            Some(mut current)
                                if current.connection.as_deref() == Some(connection.as_str())
                                    && current.last_ping_ts == record.last_ping_ts =>
                            {
                                current.connection = None;
                                envoy::save(&tx, ns, &current)?;
                                Ok::<_, DataError>(true)
                            }
                            _ => Ok(false),
                        }
                    }
                })
                .await?;
            if cleared {
                let host = HostKey(record.envoy_key.clone());
                self.fan_out(ns, &record.envoy_key, |_| Input::HostLost {
                    host: host.clone(),
                })
                .await?;
            }
        }
        Ok(count)
    }

    /// Applies a host-level input to every actor of the host, a chunk per transaction.
    async fn fan_out(
        &self,
        ns: Id,
        envoy_key: &str,
        input: impl Fn(Id) -> Input,
    ) -> Result<(), DataError> {
        let actors = self
            .inner
            .db
            .txn(|tx| async move { envoy::actors(&tx, ns, envoy_key).await })
            .await?;
        for chunk in actors.chunks(FAN_OUT_CHUNK) {
            let after = self
                .inner
                .db
                .txn(|tx| {
                    let input = &input;
                    async move {
                        let now = now_ms();
                        let mut after = super::After::default();
                        for actor in chunk {
                            match self.apply_in(&tx, *actor, input(*actor), now).await {
                                Ok((_, _, more)) => after.merge(more),
                                Err(DataError::Rejected(
                                    Rejection::NotApplicable { .. } | Rejection::Destroyed,
                                ))
                                | Err(DataError::ActorNotFound) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok::<_, DataError>(after)
                    }
                })
                .await?;
            self.perform(after).await;
        }
        Ok(())
    }
}
