//! From a routed target to "this host, this generation": resolve by id or by name and key
//! (creating for getOrCreate), wake, wait (engine-api.md §8.2, §9).

use std::time::Duration;

use rivet_orchestrator::actor;
use rivet_orchestrator::error::DataError;
use rivet_orchestrator::id::Id;
use rivet_orchestrator::lifecycle::{ActorError, WaitOutcome};
use rivet_orchestrator::namespace;
use rivet_orchestrator::shell::CreateRequest;

use super::Gateway;
use crate::{ActorRef, GatewayError, QueryMethod, Target};

/// How long a request waits for its actor to become connectable.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long resolving a name and key (and creating) may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a request goes.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    pub namespace: Id,
    pub host: String,
    pub generation: u32,
}

fn internal(error: DataError) -> GatewayError {
    match error {
        DataError::ActorNotFound => GatewayError::actor_not_found(),
        DataError::NamespaceNotFound => GatewayError::namespace_not_found(),
        DataError::DatacenterNotFound => GatewayError::datacenter_not_found(),
        other => GatewayError::internal_error(other.to_string()),
    }
}

/// The actor id a target names, creating the actor for getOrCreate. `fresh` bypasses the
/// resolution cache (after the cached actor turned out destroyed).
pub(crate) async fn resolve(
    gateway: &Gateway,
    target: &Target,
    fresh: bool,
) -> Result<Id, GatewayError> {
    let (namespace, name, key, method) = match &target.actor {
        ActorRef::Id(id) => return Ok(*id),
        ActorRef::Query {
            namespace,
            name,
            key,
            method,
        } => (namespace, name, key, method),
    };
    let cache_key = (namespace.clone(), name.clone(), key.clone());
    if fresh {
        gateway.forget(&cache_key);
    } else if let Some(actor) = gateway.cached(&cache_key) {
        return Ok(actor);
    }
    let actor = resolve_uncached(gateway, namespace, name, key, method).await?;
    gateway.remember(cache_key, actor);
    Ok(actor)
}

/// Resolves and readies a target: the actor and where it runs. A cached name/key resolution
/// whose actor is gone is resolved once more from the store.
pub(crate) async fn locate(
    gateway: &Gateway,
    target: &Target,
) -> Result<(Id, Ready), GatewayError> {
    let actor = resolve(gateway, target, false).await?;
    match ready(gateway, actor, target.skip_ready_wait).await {
        Ok(to) => Ok((actor, to)),
        Err(error) if stale(target, &error) => {
            let actor = resolve(gateway, target, true).await?;
            let to = ready(gateway, actor, target.skip_ready_wait).await?;
            Ok((actor, to))
        }
        Err(error) => Err(error),
    }
}

/// Whether a routing error means the (cached) actor is gone and a query target should be
/// resolved again.
fn stale(target: &Target, error: &GatewayError) -> bool {
    matches!(target.actor, ActorRef::Query { .. })
        && error.group == "actor"
        && (error.code == "not_found" || error.code == "destroyed_while_waiting_for_ready")
}

async fn resolve_uncached(
    gateway: &Gateway,
    namespace: &str,
    name: &str,
    key: &str,
    method: &QueryMethod,
) -> Result<Id, GatewayError> {
    let shell = gateway.shell();
    let work = async {
        let ns = namespace::get_by_name(shell.db(), namespace)
            .await
            .map_err(internal)?
            .ok_or_else(GatewayError::namespace_not_found)?;
        match method {
            QueryMethod::Get => {
                let ns_id = ns.id().map_err(internal)?;
                let found = shell
                    .db()
                    .txn(|tx| async move { actor::by_key(&tx, ns_id, name, key).await })
                    .await
                    .map_err(internal)?;
                found.ok_or_else(GatewayError::actor_not_found)
            }
            QueryMethod::GetOrCreate {
                pool,
                input,
                region,
                crash_policy: _,
            } => {
                let request = CreateRequest {
                    name: name.to_string(),
                    key: Some(key.to_string()),
                    input: input.clone(),
                    pool: pool.clone(),
                    datacenter: region.clone(),
                };
                match shell.create_actor(&ns, request, true).await {
                    Ok((view, _)) => view
                        .actor_id
                        .parse()
                        .map_err(|_| GatewayError::internal_error("bad actor id")),
                    Err(DataError::NoRunnerConfig { namespace, pool }) => Err(
                        GatewayError::actor_no_runner_config_configured(&namespace, &pool),
                    ),
                    Err(other) => Err(internal(other)),
                }
            }
        }
    };
    tokio::time::timeout(RESOLVE_TIMEOUT, work)
        .await
        .map_err(|_| GatewayError::route_resolve_query_timeout())?
}

/// Wakes the actor if needed and waits until it is connectable; with `skip_ready_wait`, the
/// host it is (or was last) assigned to, without waking or waiting.
pub(crate) async fn ready(
    gateway: &Gateway,
    actor: Id,
    skip_ready_wait: bool,
) -> Result<Ready, GatewayError> {
    let shell = gateway.shell();
    let loaded = shell
        .db()
        .txn(|tx| async move {
            let Some(namespace) = shell.actor_namespace(&tx, actor).await? else {
                return Ok(None);
            };
            Ok(actor::load_record(&tx, actor)
                .await?
                .map(|record| (namespace, record)))
        })
        .await
        .map_err(internal)?;
    let Some((namespace, record)) = loaded else {
        return Err(GatewayError::actor_not_found());
    };
    if record.destroy_ts.is_some() {
        return Err(GatewayError::actor_not_found());
    }
    // Running on a connected host: no wake needed.
    if let Some((host, generation)) = record.ready_target() {
        return Ok(Ready {
            namespace,
            host: host.0,
            generation,
        });
    }
    if skip_ready_wait {
        let assigned = record
            .phase
            .live()
            .map(|(host, generation)| (host.0.clone(), generation))
            .or_else(|| record.last_host.clone().map(|h| (h.0, record.generation)));
        if let Some((host, generation)) = assigned {
            return Ok(Ready {
                namespace,
                host,
                generation,
            });
        }
    }
    match shell.wake(actor, READY_TIMEOUT).await {
        Ok(WaitOutcome::Ready { host, generation }) => Ok(Ready {
            namespace,
            host: host.0,
            generation,
        }),
        Ok(WaitOutcome::Destroyed) => Err(GatewayError::actor_destroyed_while_waiting_for_ready()),
        // A serverless application that cannot start it.
        Ok(WaitOutcome::Failed(ActorError::RunnerPoolError { .. })) => {
            Err(GatewayError::actor_runner_failed(&actor))
        }
        // No host can take it now (no_envoys…): answer at once instead of waiting 30 s for
        // nothing; clients read the reason from the actor's `error`.
        Ok(WaitOutcome::Failed(_)) => Err(GatewayError::actor_ready_timeout(&actor)),
        Err(DataError::ReadyTimeout) => Err(GatewayError::actor_ready_timeout(&actor)),
        Err(other) => Err(internal(other)),
    }
}
