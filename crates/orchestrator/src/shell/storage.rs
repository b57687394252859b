//! Actor KV and SQLite requests from a host socket, with generation fencing: the actor must
//! belong to the socket's namespace, and writes (KV puts and deletes, SQLite commits) are only
//! accepted from the host that runs the actor's live generation. A zombie host of an older
//! generation therefore cannot overwrite what the new instance wrote (ARCHITECTURE.md,
//! principle 2). The reference fences SQLite by generation only and KV not at all.

use rivet_envoy_protocol::{self as proto, KvRequestData, KvResponseData};
use rivet_store::{Tx, TxError};

use super::{now_ms, Shell};
use crate::actor;
use crate::actor_kv::{self, KvError};
use crate::actor_sqlite::{self, SqliteError};
use crate::error::DataError;
use crate::id::Id;

/// Who is asking: the socket's namespace, host key and protocol version.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// Namespace id of the socket.
    pub namespace: Id,
    /// Host key of the socket.
    pub envoy_key: &'a str,
    /// Socket protocol version: v6 hosts may commit more than 320 pages at once.
    pub protocol: proto::ProtocolVersion,
}

/// Whether the actor exists in the namespace, and the generation it runs on this host.
async fn fence(
    shell: &Shell,
    tx: &Tx,
    who: Requester<'_>,
    actor: Id,
) -> Result<Option<Option<u32>>, DataError> {
    if shell.actor_namespace(tx, actor).await? != Some(who.namespace) {
        return Ok(None);
    }
    let Some(record) = actor::load_record(tx, actor).await? else {
        return Ok(None);
    };
    Ok(Some(
        record
            .phase
            .live()
            // A serverless start is not adopted until the host reports Running, and the npm
            // host reads its database before that: any host of the namespace may act for it.
            .filter(|(host, _)| host.0 == who.envoy_key || host.is_serverless())
            .map(|(_, generation)| generation),
    ))
}

#[derive(Debug, thiserror::Error)]
enum KvFailure {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Data(#[from] DataError),
}

impl From<rivet_store::StoreError> for KvFailure {
    fn from(error: rivet_store::StoreError) -> Self {
        KvFailure::Kv(KvError::Store(error))
    }
}

impl KvFailure {
    /// What the host is told: refusals and KV errors as they are, anything else generic.
    fn client_message(&self) -> String {
        match self {
            KvFailure::Kv(e) => e.message(),
            KvFailure::Refused(m) => m.clone(),
            KvFailure::Data(_) => "internal error".to_string(),
        }
    }
}

impl rivet_store::TxError for KvFailure {
    fn as_store_error(&self) -> Option<&rivet_store::StoreError> {
        match self {
            KvFailure::Kv(KvError::Store(e)) | KvFailure::Data(DataError::Store(e)) => Some(e),
            _ => None,
        }
    }
}

fn is_write(request: &KvRequestData) -> bool {
    !matches!(request, KvRequestData::Get(_) | KvRequestData::List(_))
}

impl Shell {
    /// Answers a burst of a host's KV requests in one transaction, in order (so one actor's
    /// requests apply in the order sent), one answer per request: a request that is refused or
    /// invalid gets its error and writes nothing while the others apply. Only a store failure
    /// fails them all. One commit instead of one per request saves a commit hand-off and a
    /// task wake-up per write under load.
    pub async fn kv_requests(
        &self,
        who: Requester<'_>,
        requests: &[proto::ToRivetKvRequest],
    ) -> Vec<proto::ToEnvoyKvResponse> {
        let result = self
            .inner
            .db
            .txn(|tx| async move {
                let now = now_ms();
                let mut answers = Vec::with_capacity(requests.len());
                for request in requests {
                    let data = match self.kv_one(&tx, who, request, now).await {
                        Ok(data) => data,
                        Err(failure) => {
                            if failure.as_store_error().is_some() {
                                return Err(failure);
                            }
                            tracing::debug!(actor_id = %request.actor_id, %failure, "kv request refused");
                            KvResponseData::Error(proto::KvErrorResponse {
                                message: failure.client_message(),
                            })
                        }
                    };
                    answers.push(proto::ToEnvoyKvResponse {
                        request_id: request.request_id,
                        data,
                    });
                }
                Ok::<_, KvFailure>(answers)
            })
            .await;
        result.unwrap_or_else(|failure| {
            tracing::warn!(%failure, requests = requests.len(), "kv requests failed");
            let message = failure.client_message();
            requests
                .iter()
                .map(|request| proto::ToEnvoyKvResponse {
                    request_id: request.request_id,
                    data: KvResponseData::Error(proto::KvErrorResponse {
                        message: message.clone(),
                    }),
                })
                .collect()
        })
    }

    /// One KV request inside `tx`, fenced: writes only from the host running the actor.
    async fn kv_one(
        &self,
        tx: &Tx,
        who: Requester<'_>,
        request: &proto::ToRivetKvRequest,
        now: i64,
    ) -> Result<KvResponseData, KvFailure> {
        let actor = request
            .actor_id
            .parse::<Id>()
            .map_err(|error| KvFailure::Refused(error.to_string()))?;
        match fence(self, tx, who, actor).await? {
            None => return Err(KvFailure::Refused("actor does not exist".into())),
            Some(None) if is_write(&request.data) => {
                return Err(KvFailure::Refused(
                    "actor is not running on this envoy".into(),
                ))
            }
            Some(_) => {}
        }
        Ok(actor_kv::handle(tx, &actor, &request.data, now).await?)
    }

    /// Answers a host's SQLite page-store request; `None` for messages that are not one.
    pub async fn sqlite_request(
        &self,
        who: Requester<'_>,
        message: &proto::ToRivet,
    ) -> Option<proto::ToEnvoy> {
        use proto::ToEnvoy as E;
        use proto::ToRivet as R;
        let max_commit = match who.protocol {
            proto::ProtocolVersion::V6 => None,
            _ => Some(actor_sqlite::V8_MAX_COMMIT_BYTES),
        };
        Some(match message {
            R::SqliteGetPagesRequest(env) => E::SqliteGetPagesResponse(proto::RequestEnvelope {
                request_id: env.request_id,
                data: match self
                    .sqlite_txn(who, &env.data.actor_id, |tx, a, g| async move {
                        actor_sqlite::get_pages(&tx, &a, &env.data, g).await
                    })
                    .await
                {
                    Ok(ok) => proto::SqliteGetPagesResponse::Ok(ok),
                    Err(e) => proto::SqliteGetPagesResponse::Error(e.to_response()),
                },
            }),
            R::SqliteCommitRequest(env) => E::SqliteCommitResponse(proto::RequestEnvelope {
                request_id: env.request_id,
                data: match self
                    .sqlite_txn(who, &env.data.actor_id, |tx, a, g| async move {
                        actor_sqlite::commit(&tx, &a, &env.data, g, max_commit).await
                    })
                    .await
                {
                    Ok(ok) => proto::SqliteCommitResponse::Ok(ok),
                    Err(e) => proto::SqliteCommitResponse::Error(e.to_response()),
                },
            }),
            R::SqliteCommitStageBeginRequest(env) => {
                E::SqliteCommitStageBeginResponse(proto::RequestEnvelope {
                    request_id: env.request_id,
                    data: match self
                        .sqlite_txn(who, &env.data.actor_id, |tx, a, g| async move {
                            actor_sqlite::stage_begin(&tx, &a, &env.data, g).await
                        })
                        .await
                    {
                        Ok(ok) => proto::SqliteCommitStageBeginResponse::Ok(ok),
                        Err(e) => proto::SqliteCommitStageBeginResponse::Error(e.to_response()),
                    },
                })
            }
            R::SqliteCommitStageSegmentRequest(env) => {
                E::SqliteCommitStageSegmentResponse(proto::RequestEnvelope {
                    request_id: env.request_id,
                    data: match self
                        .sqlite_txn(who, &env.data.actor_id, |tx, a, g| async move {
                            actor_sqlite::stage_segment(&tx, &a, &env.data, g).await
                        })
                        .await
                    {
                        Ok(ok) => proto::SqliteCommitStageSegmentResponse::Ok(ok),
                        Err(e) => proto::SqliteCommitStageSegmentResponse::Error(e.to_response()),
                    },
                })
            }
            R::SqliteCommitFinalizeRequest(env) => {
                E::SqliteCommitFinalizeResponse(proto::RequestEnvelope {
                    request_id: env.request_id,
                    data: match self
                        .sqlite_txn(who, &env.data.actor_id, |tx, a, g| async move {
                            actor_sqlite::finalize(&tx, &a, &env.data, g).await
                        })
                        .await
                    {
                        Ok(ok) => proto::SqliteCommitFinalizeResponse::Ok(ok),
                        Err(e) => proto::SqliteCommitFinalizeResponse::Error(e.to_response()),
                    },
                })
            }
            R::SqliteExecRequest(env) => E::SqliteExecResponse(proto::RequestEnvelope {
                request_id: env.request_id,
                data: proto::SqliteExecResponse::Error(unsupported()),
            }),
            R::SqliteExecuteRequest(env) => E::SqliteExecuteResponse(proto::RequestEnvelope {
                request_id: env.request_id,
                data: proto::SqliteExecuteResponse::Error(unsupported()),
            }),
            R::SqliteExecuteBatchRequest(env) => {
                E::SqliteExecuteBatchResponse(proto::RequestEnvelope {
                    request_id: env.request_id,
                    data: proto::SqliteExecuteBatchResponse::Error(unsupported()),
                })
            }
            _ => return None,
        })
    }

    /// Runs a page-store operation in a transaction with the fence read in the same
    /// transaction, so a generation change cannot slip between check and write.
    async fn sqlite_txn<T, F, Fut>(
        &self,
        who: Requester<'_>,
        actor_id: &str,
        op: F,
    ) -> Result<T, SqliteError>
    where
        F: Fn(Tx, Id, Option<u32>) -> Fut,
        Fut: std::future::Future<Output = Result<T, SqliteError>>,
    {
        let actor: Id = actor_id.parse().map_err(|_| SqliteError::ActorNotFound)?;
        self.inner
            .db
            .txn(|tx| {
                let op = &op;
                async move {
                    let generation = match fence(self, &tx, who, actor).await {
                        Ok(Some(generation)) => generation,
                        Ok(None) => None,
                        Err(DataError::Store(e)) => return Err(SqliteError::Store(e)),
                        Err(e) => return Err(SqliteError::Corrupt(e.to_string())),
                    };
                    op(tx, actor, generation).await
                }
            })
            .await
    }
}

/// The remote-SQL requests (WebAssembly hosts only) are not implemented yet.
fn unsupported() -> proto::SqliteErrorResponse {
    proto::SqliteErrorResponse {
        group: "sqlite".to_string(),
        code: "unsupported".to_string(),
        message:
            "remote SQL execution (Exec/Execute/ExecuteBatch) is not supported by this engine yet"
                .to_string(),
    }
}
