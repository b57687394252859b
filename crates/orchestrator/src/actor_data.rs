//! Everything an actor stores for itself (KV entries and its SQLite database), as one unit for
//! destroy.

use rivet_store::{StoreError, Tx};

use crate::id::Id;
use crate::{actor_kv, actor_sqlite};

/// Deletes the actor's KV entries and size counter, its SQLite pages and head, and any staged
/// SQLite commit, inside the caller's transaction. Other actors' data is untouched.
pub async fn delete_actor_data(tx: &Tx, actor: &Id) -> Result<(), StoreError> {
    actor_kv::clear_actor(tx, actor);
    actor_sqlite::clear_actor(tx, actor);
    Ok(())
}
