//! Hibernating WebSockets (envoy-protocol.md §9.6): client sockets the gateway keeps open while
//! their actor sleeps. Each is recorded under the actor so that every later StartActor lists it
//! in `hibernatingRequests` and the host restores it without a new open.

use rivet_envoy_protocol::HibernatingRequest;
use rivet_store::tuple::{Bytes, Element};
use rivet_store::{RangeOptions, Tx};

use crate::error::DataError;
use crate::id::Id;
use crate::keys;

/// Records a hibernating socket of `actor`.
pub fn add(tx: &Tx, actor: Id, gateway_id: [u8; 4], request_id: [u8; 4]) -> Result<(), DataError> {
    let key = keys::hibernating(actor).pack(&(Bytes(&gateway_id), Bytes(&request_id)));
    tx.set(&key, &[])?;
    Ok(())
}

/// Forgets one (the client closed it).
pub fn remove(tx: &Tx, actor: Id, gateway_id: [u8; 4], request_id: [u8; 4]) {
    tx.clear(&keys::hibernating(actor).pack(&(Bytes(&gateway_id), Bytes(&request_id))));
}

/// Forgets all of an actor's (destroy).
pub fn clear(tx: &Tx, actor: Id) {
    let (begin, end) = keys::hibernating(actor).range();
    tx.clear_range(&begin, &end);
}

/// The actor's hibernating sockets, for its next StartActor.
pub async fn list(tx: &Tx, actor: Id) -> Result<Vec<HibernatingRequest>, DataError> {
    let space = keys::hibernating(actor);
    let (begin, end) = space.range();
    let rows = tx.get_range(&begin, &end, RangeOptions::new()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (key, _) in rows {
        if let [Element::Bytes(gateway), Element::Bytes(request)] = space.unpack(&key)?.as_slice() {
            if let (Ok(gateway_id), Ok(request_id)) = (
                <[u8; 4]>::try_from(gateway.as_slice()),
                <[u8; 4]>::try_from(request.as_slice()),
            ) {
                out.push(HibernatingRequest {
                    gateway_id,
                    request_id,
                });
            }
        }
    }
    Ok(out)
}
