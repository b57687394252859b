//! Applying lifecycle inputs inside store transactions: the record, the due-time index, the
//! host's actor index and slot count, and the host's pending commands change atomically.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rivet_envoy_protocol::{self as proto, ProtocolVersion};
use rivet_store::Tx;

use super::convert::{command_to_wire, event_to_lifecycle};
use super::{now_ms, After, Shell};
use crate::actor::{self, ActorMeta, ActorView};
use crate::allocation::{choose_host, other_host_available};
use crate::error::DataError;
use crate::id::Id;
use crate::lifecycle::{
    self, ActorError, ActorRecord, Command, CrashPolicy, Effect, HostKey, Input, Rejection,
    StopReason, Timestamp, WaitOutcome,
};
use crate::namespace::Namespace;
use crate::{envoy, keys, runner_config};

/// `POST /actors` and `PUT /actors`.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Type name.
    pub name: String,
    /// Serialized key.
    pub key: Option<String>,
    /// Creation input bytes.
    pub input: Option<Vec<u8>>,
    /// Pool.
    pub pool: String,
    /// Requested datacenter name.
    pub datacenter: Option<String>,
}

impl Shell {
    /// Creates an actor, or with `get_or_create` returns the live actor holding the key. Exactly
    /// one actor results for one key however many calls race (the key index read conflicts).
    /// Returns the actor JSON and whether it was created.
    pub async fn create_actor(
        &self,
        namespace: &Namespace,
        request: CreateRequest,
        get_or_create: bool,
    ) -> Result<(ActorView, bool), DataError> {
        if let Some(key) = &request.key {
            if key.is_empty() {
                return Err(DataError::EmptyKey);
            }
            if key.len() > actor::MAX_KEY_LEN {
                return Err(DataError::KeyTooLarge {
                    key_preview: key.chars().take(32).collect(),
                });
            }
        }
        let datacenter = &self.inner.config.datacenter;
        if request
            .datacenter
            .as_ref()
            .is_some_and(|dc| dc != datacenter)
        {
            return Err(DataError::DatacenterNotFound);
        }
        let ns = namespace.id()?;
        let (view, created, after) = self
            .inner
            .db
            .txn(|tx| {
                let request = request.clone();
                async move {
                    if runner_config::get_tx(&tx, ns, &request.pool, datacenter)
                        .await?
                        .is_none()
                    {
                        return Err(DataError::NoRunnerConfig {
                            namespace: namespace.name.clone(),
                            pool: request.pool.clone(),
                        });
                    }
                    if let Some(key) = &request.key {
                        if let Some(existing) = actor::by_key(&tx, ns, &request.name, key).await? {
                            if !get_or_create {
                                return Err(DataError::DuplicateKey {
                                    existing_actor_id: existing.to_string(),
                                    key: key.clone(),
                                });
                            }
                            let (meta, record) = actor::load(&tx, existing)
                                .await?
                                .ok_or(DataError::ActorNotFound)?;
                            return Ok((ActorView::new(&meta, &record), false, After::default()));
                        }
                    }
                    let now = now_ms();
                    let id = Id::new(self.inner.config.label);
                    let meta = ActorMeta {
                        actor_id: id.to_string(),
                        namespace_id: namespace.namespace_id.clone(),
                        name: request.name.clone(),
                        key: request.key.clone(),
                        datacenter: datacenter.clone(),
                        pool: request.pool.clone(),
                        create_ts: now,
                    };
                    actor::insert(&tx, id, &meta, request.input.as_deref())?;
                    if let Some(key) = &request.key {
                        actor::set_key(&tx, ns, &request.name, key, id)?;
                    }
                    let (record, effects) = ActorRecord::create(
                        lifecycle::CreateActor {
                            pool: request.pool.clone(),
                            has_key: request.key.is_some(),
                            // Envoy pools always sleep on a crash (engine-api.md §6).
                            crash_policy: CrashPolicy::Sleep,
                        },
                        now,
                        &self.inner.config.lifecycle,
                    );
                    let (record, after) = self
                        .apply_effects(&tx, id, &meta, None, record, effects, now)
                        .await?;
                    Ok((ActorView::new(&meta, &record), true, after))
                }
            })
            .await?;
        if created {
            tracing::debug!(actor_id = %view.actor_id, name = %view.name, "actor created");
        }
        self.perform(after).await;
        Ok((view, created))
    }

    /// Applies one input to one actor in its own transaction and performs the effects.
    pub async fn apply(&self, actor: Id, input: Input) -> Result<ActorView, DataError> {
        let (view, after) = self
            .inner
            .db
            .txn(|tx| {
                let input = input.clone();
                async move {
                    let (meta, record, after) = self.apply_in(&tx, actor, input, now_ms()).await?;
                    Ok::<_, DataError>((ActorView::new(&meta, &record), after))
                }
            })
            .await?;
        self.perform(after).await;
        Ok(view)
    }

    /// `DELETE /actors/{id}`: an already destroyed actor is fine.
    pub async fn destroy(&self, actor: Id) -> Result<(), DataError> {
        match self.apply(actor, Input::Destroy).await {
            Ok(_) => Ok(()),
            Err(DataError::Rejected(Rejection::Destroyed | Rejection::AlreadyDestroying)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Applies `input` to `actor` inside `tx`.
    pub(crate) async fn apply_in(
        &self,
        tx: &Tx,
        actor: Id,
        input: Input,
        now: Timestamp,
    ) -> Result<(ActorMeta, ActorRecord, After), DataError> {
        let (meta, old) = actor::load(tx, actor)
            .await?
            .ok_or(DataError::ActorNotFound)?;
        let input = match input {
            // Whether another host could take the actor is only known here, in the transaction.
            Input::Wake { .. } => {
                let other = match old.phase.live() {
                    Some((host, _)) if old.host_lost_at.is_some() => {
                        let candidates =
                            envoy::candidates(tx, meta.namespace()?, &old.pool).await?;
                        other_host_available(&candidates, now, host)
                    }
                    _ => false,
                };
                Input::Wake {
                    other_host_available: other,
                }
            }
            input => input,
        };
        let (record, effects) =
            lifecycle::step_with(&self.inner.config.lifecycle, &old, input, now)?;
        let (record, after) = self
            .apply_effects(tx, actor, &meta, Some(&old), record, effects, now)
            .await?;
        Ok((meta, record, after))
    }

    /// Performs the in-transaction part of `effects` (allocating inline, so create → StartActor
    /// is one commit), writes the record and keeps the indexes in step with it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_effects(
        &self,
        tx: &Tx,
        actor: Id,
        meta: &ActorMeta,
        old: Option<&ActorRecord>,
        mut record: ActorRecord,
        effects: Vec<Effect>,
        now: Timestamp,
    ) -> Result<(ActorRecord, After), DataError> {
        let config = &self.inner.config.lifecycle;
        let ns = meta.namespace()?;
        let mut after = After::default();
        let mut queue: VecDeque<Effect> = effects.into();
        let mut input_bytes: Option<Option<Vec<u8>>> = None;
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::RequestAllocation { pool } => {
                    let serverless = matches!(
                        runner_config::get_tx(tx, ns, &pool, &self.inner.config.datacenter)
                            .await?
                            .map(|c| c.kind),
                        Some(runner_config::Kind::Serverless(_))
                    );
                    let input = if serverless {
                        // Started by a request to the application; its host adopts it later.
                        Input::Allocated {
                            host: HostKey::serverless(
                                &Id::new(self.inner.config.label).to_string(),
                            ),
                        }
                    } else {
                        let candidates = envoy::candidates(tx, ns, &pool).await?;
                        match choose_host(&candidates, now, self.next_tiebreak()) {
                            Some(host) => Input::Allocated { host },
                            None => Input::AllocationFailed {
                                error: ActorError::NoEnvoys,
                            },
                        }
                    };
                    let (next, more) = lifecycle::step_with(config, &record, input, now)?;
                    record = next;
                    queue.extend(more);
                }
                Effect::SendCommand {
                    host,
                    generation,
                    index,
                    command,
                } => {
                    if matches!(command, Command::StartActor { .. }) && input_bytes.is_none() {
                        input_bytes = Some(actor::load_input(tx, actor).await?);
                    }
                    let input = input_bytes.as_ref().and_then(|i| i.as_deref());
                    let mut wire = command_to_wire(meta, input, generation, index, &command);
                    if let proto::Command::StartActor(start) = &mut wire.inner {
                        start.hibernating_requests = crate::hibernation::list(tx, actor).await?;
                    }
                    if host.is_serverless() {
                        // Nothing listens on a stand-in: a start becomes the `/start` request;
                        // a stop before the host adopted the actor has nobody to reach.
                        if matches!(command, Command::StartActor { .. }) {
                            after.serverless.push(crate::serverless::ServerlessStart {
                                ns,
                                pool: meta.pool.clone(),
                                actor,
                                generation,
                                command: wire,
                            });
                        }
                        continue;
                    }
                    let space = keys::envoy_commands(ns, &host.0);
                    if matches!(
                        command,
                        Command::StopActor {
                            reason: StopReason::Lost
                        }
                    ) {
                        // The generation is given up: a host that comes back must only learn
                        // that, not start it again from a replayed StartActor.
                        let (begin, end) = space.range_of(&(actor, generation));
                        tx.clear_range(&begin, &end);
                    }
                    let stored = proto::encode(
                        ProtocolVersion::V8,
                        &proto::ToEnvoy::Commands(vec![wire.clone()]),
                    )
                    .map_err(|e| DataError::Corrupt {
                        what: "command",
                        source: serde::de::Error::custom(e),
                    })?;
                    tx.set(&space.pack(&(actor, generation, index)), &stored)?;
                    after.push_command(ns, &host.0, wire);
                }
                Effect::ReleaseWaiters { outcome } => after.releases.push((actor, outcome)),
                Effect::DeleteActorData => {
                    crate::actor_data::delete_actor_data(tx, &actor).await?;
                    crate::hibernation::clear(tx, actor);
                }
                Effect::ClearKeyIndex => actor::clear_key(tx, meta, actor).await?,
            }
        }
        actor::save_record(tx, actor, &record)?;
        let old_due = old.and_then(ActorRecord::next_deadline);
        let new_due = record.next_deadline();
        if old_due != new_due {
            if let Some(due) = old_due {
                tx.clear(&keys::timer(due, actor));
            }
            if let Some(due) = new_due {
                tx.set(&keys::timer(due, actor), &[])?;
                after.arm(due);
            }
        }
        let old_start = old.and_then(|o| o.phase.live());
        if old_start.is_some() && old_start != record.phase.live() {
            after
                .hibernate
                .extend(crate::hibernation::list(tx, actor).await?);
        }
        let old_host = old.and_then(|o| o.phase.live()).map(|(h, _)| h.clone());
        let new_host = record.phase.live().map(|(h, _)| h.clone());
        if old_host != new_host {
            if let Some(HostKey(host)) = &old_host {
                tx.clear(&keys::envoy_actors(ns, host).pack(&(actor,)));
                tx.add(&keys::envoy_slots(ns, host), -1)?;
            }
            if let Some(HostKey(host)) = &new_host {
                tx.set(&keys::envoy_actors(ns, host).pack(&(actor,)), &[])?;
                tx.add(&keys::envoy_slots(ns, host), 1)?;
            }
        }
        Ok((record, after))
    }

    /// Applies a batch of a host's events in one transaction (one commit for many actors) and
    /// returns the checkpoints to acknowledge: the highest index per (actor, generation),
    /// including refused duplicates and stale events so that the host stops re-sending them.
    pub async fn handle_events(
        &self,
        ns: Id,
        host: &str,
        events: &[proto::EventWrapper],
    ) -> Result<Vec<proto::ActorCheckpoint>, DataError> {
        let host_key = HostKey(host.to_string());
        let after = self
            .inner
            .db
            .txn(|tx| {
                let host_key = host_key.clone();
                async move {
                    let now = now_ms();
                    let mut after = After::default();
                    for event in events {
                        let Ok(actor) = event.checkpoint.actor_id.parse::<Id>() else {
                            tracing::debug!(actor_id = %event.checkpoint.actor_id, "event for a malformed actor id");
                            continue;
                        };
                        let input = Input::Event {
                            host: host_key.clone(),
                            generation: event.checkpoint.generation,
                            index: event.checkpoint.index,
                            event: event_to_lifecycle(&event.inner),
                        };
                        // Only the socket's namespace: a host cannot touch other actors.
                        match actor::load_meta(&tx, actor).await? {
                            Some(meta) if meta.namespace()? == ns => {}
                            _ => {
                                tracing::debug!(%actor, "event for an unknown actor");
                                continue;
                            }
                        }
                        match self.apply_in(&tx, actor, input, now).await {
                            Ok((_, _, more)) => after.merge(more),
                            Err(DataError::Rejected(rejection)) => {
                                tracing::debug!(%actor, %rejection, "event refused");
                            }
                            Err(DataError::ActorNotFound) => {
                                tracing::debug!(%actor, "event for an unknown actor");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok::<_, DataError>(after)
                }
            })
            .await?;
        self.perform(after).await;
        let mut acks: BTreeMap<(String, u32), i64> = BTreeMap::new();
        for event in events {
            let slot = acks
                .entry((
                    event.checkpoint.actor_id.clone(),
                    event.checkpoint.generation,
                ))
                .or_insert(event.checkpoint.index);
            *slot = (*slot).max(event.checkpoint.index);
        }
        Ok(acks
            .into_iter()
            .map(|((actor_id, generation), index)| proto::ActorCheckpoint {
                actor_id,
                generation,
                index,
            })
            .collect())
    }

    /// The gateway's question: where does this actor run? Wakes it when needed and waits up to
    /// `timeout` for it to become connectable.
    pub async fn wake(&self, actor: Id, timeout: Duration) -> Result<WaitOutcome, DataError> {
        // Fast path: a running actor is answered from one read.
        let ready = self
            .inner
            .db
            .txn(|tx| async move { actor::load_record(&tx, actor).await })
            .await?;
        match &ready {
            None => return Err(DataError::ActorNotFound),
            Some(record) if record.destroy_ts.is_some() => return Ok(WaitOutcome::Destroyed),
            Some(record) => {
                if let Some((host, generation)) = record.ready_target() {
                    return Ok(WaitOutcome::Ready { host, generation });
                }
            }
        }
        let waiter = self.register_waiter(actor);
        match self
            .apply(
                actor,
                Input::Wake {
                    other_host_available: false,
                },
            )
            .await
        {
            Ok(_) => {}
            Err(DataError::Rejected(Rejection::Destroyed)) => return Ok(WaitOutcome::Destroyed),
            Err(e) => return Err(e),
        }
        match tokio::time::timeout(timeout, waiter).await {
            Ok(Ok(outcome)) => Ok(outcome),
            // The waiter list was dropped (shell stopping) or the deadline passed.
            Ok(Err(_)) | Err(_) => Err(DataError::ReadyTimeout),
        }
    }

    /// Reads one actor's JSON.
    pub async fn get_actor(&self, actor: Id) -> Result<Option<ActorView>, DataError> {
        self.inner
            .db
            .txn(|tx| async move {
                Ok::<_, DataError>(
                    actor::load(&tx, actor)
                        .await?
                        .map(|(meta, record)| ActorView::new(&meta, &record)),
                )
            })
            .await
    }
}
