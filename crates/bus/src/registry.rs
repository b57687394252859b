//! Local subscriptions of one bus, keyed by exact subject.
//!
//! The memory driver delivers straight from here; the PostgreSQL driver delivers here what its
//! listener connection receives. A publish costs one read-locked hash lookup plus one channel send
//! per subscriber, and each send clones two reference counts, never the payload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::message::RawMessage;

pub(crate) type Rx = mpsc::UnboundedReceiver<RawMessage>;
type Tx = mpsc::UnboundedSender<RawMessage>;

#[derive(Default)]
pub(crate) struct Registry {
    subjects: RwLock<HashMap<Arc<str>, Entry>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Entry {
    plain: Vec<(u64, Tx)>,
    groups: Vec<Group>,
}

struct Group {
    name: Arc<str>,
    members: Vec<(u64, Tx)>,
    /// Round-robin cursor, so members of a group share the load.
    next: AtomicUsize,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.groups.is_empty()
    }

    /// Hands `msg` to every plain subscriber; returns how many took it.
    fn send_plain(&self, msg: &RawMessage) -> usize {
        self.plain
            .iter()
            .filter(|(_, tx)| tx.send(msg.clone()).is_ok())
            .count()
    }
}

impl Group {
    /// Hands `msg` to one live member; false when none is left.
    fn deliver_one(&self, msg: RawMessage) -> bool {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut msg = msg;
        for i in 0..n {
            match self.members[(start + i) % n].1.send(msg) {
                Ok(()) => return true,
                Err(mpsc::error::SendError(back)) => msg = back,
            }
        }
        false
    }
}

impl Registry {
    // A poisoned lock only means a panic elsewhere while holding it; the map itself stays
    // consistent (every mutation is a single push/retain), so keep serving.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, Entry>> {
        self.subjects.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, Entry>> {
        self.subjects.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a subscriber (a queue group member when `group` is set). Returns its id, its
    /// receiving end, and whether it is the subject's first local subscriber.
    pub(crate) fn add(&self, subject: &Arc<str>, group: Option<&str>) -> (u64, Rx, bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut map = self.write();
        let entry = map.entry(subject.clone()).or_default();
        let first = entry.is_empty();
        match group {
            None => entry.plain.push((id, tx)),
            Some(name) => match entry.groups.iter_mut().find(|g| &*g.name == name) {
                Some(g) => g.members.push((id, tx)),
                None => entry.groups.push(Group {
                    name: name.into(),
                    members: vec![(id, tx)],
                    next: AtomicUsize::new(0),
                }),
            },
        }
        (id, rx, first)
    }

    /// Removes subscriber `id`; true when the subject has no local subscriber left.
    pub(crate) fn remove(&self, subject: &str, id: u64) -> bool {
        let mut map = self.write();
        let Some(entry) = map.get_mut(subject) else {
            return false;
        };
        entry.plain.retain(|(i, _)| *i != id);
        for g in &mut entry.groups {
            g.members.retain(|(i, _)| *i != id);
        }
        entry.groups.retain(|g| !g.members.is_empty());
        if entry.is_empty() {
            map.remove(subject);
            true
        } else {
            false
        }
    }

    /// Delivers to every plain subscriber and to one member of each queue group. Returns how
    /// many subscriptions got the message. The message reuses the registry's copy of the
    /// subject, so a publish allocates nothing.
    pub(crate) fn deliver_all(
        &self,
        subject: &str,
        payload: &Bytes,
        reply: &Option<Arc<str>>,
    ) -> usize {
        self.with_entry(subject, payload, reply, |entry, msg| {
            let plain = entry.send_plain(&msg);
            let groups: usize = entry
                .groups
                .iter()
                .map(|g| usize::from(g.deliver_one(msg.clone())))
                .sum();
            plain + groups
        })
    }

    /// Delivers to every plain subscriber only (queue groups go through [`Self::deliver_group`]).
    pub(crate) fn deliver_plain(
        &self,
        subject: &str,
        payload: &Bytes,
        reply: &Option<Arc<str>>,
    ) -> usize {
        self.with_entry(subject, payload, reply, |entry, msg| entry.send_plain(&msg))
    }

    /// Runs `deliver` on the subject's entry with a message built around the registry's copy of
    /// the subject; 0 when nobody subscribes to it.
    fn with_entry(
        &self,
        subject: &str,
        payload: &Bytes,
        reply: &Option<Arc<str>>,
        deliver: impl FnOnce(&Entry, RawMessage) -> usize,
    ) -> usize {
        let map = self.read();
        let Some((key, entry)) = map.get_key_value(subject) else {
            return 0;
        };
        let msg = RawMessage {
            subject: key.clone(),
            payload: payload.clone(),
            reply: reply.clone(),
        };
        deliver(entry, msg)
    }

    /// Names of the queue groups with a local member on `subject`.
    pub(crate) fn groups_of(&self, subject: &str) -> Vec<Arc<str>> {
        let map = self.read();
        map.get(subject)
            .map(|e| e.groups.iter().map(|g| g.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Delivers to one local member of `group`; false when the group has no live member.
    pub(crate) fn deliver_group(
        &self,
        subject: &str,
        group: &str,
        payload: &Bytes,
        reply: &Option<Arc<str>>,
    ) -> bool {
        let map = self.read();
        let Some((key, entry)) = map.get_key_value(subject) else {
            return false;
        };
        entry
            .groups
            .iter()
            .find(|g| &*g.name == group)
            .is_some_and(|g| {
                g.deliver_one(RawMessage {
                    subject: key.clone(),
                    payload: payload.clone(),
                    reply: reply.clone(),
                })
            })
    }

    /// True when `subject` has a local subscriber.
    pub(crate) fn contains(&self, subject: &str) -> bool {
        self.read().contains_key(subject)
    }

    /// Every subject with a local subscriber.
    pub(crate) fn subjects(&self) -> Vec<Arc<str>> {
        self.read().keys().cloned().collect()
    }

    /// Drops every subscriber, which ends their streams.
    pub(crate) fn clear(&self) {
        self.write().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: Bytes = Bytes::from_static(b"x");

    #[test]
    fn group_round_robins_and_plain_fans_out() {
        let r = Registry::default();
        let s: Arc<str> = "a.b".into();
        let (_, mut p1, first) = r.add(&s, None);
        assert!(first);
        let (_, mut p2, first) = r.add(&s, None);
        assert!(!first);
        let (_, mut g1, _) = r.add(&s, Some("g"));
        let (_, mut g2, _) = r.add(&s, Some("g"));
        for _ in 0..4 {
            assert_eq!(r.deliver_all(&s, &X, &None), 3);
        }
        let count = |rx: &mut Rx| std::iter::from_fn(|| rx.try_recv().ok()).count();
        assert_eq!(count(&mut p1), 4);
        assert_eq!(count(&mut p2), 4);
        assert_eq!(count(&mut g1), 2);
        assert_eq!(count(&mut g2), 2);
    }

    #[test]
    fn remove_reports_last_subscriber() {
        let r = Registry::default();
        let s: Arc<str> = "a".into();
        let (a, _ra, _) = r.add(&s, None);
        let (b, _rb, _) = r.add(&s, Some("g"));
        assert!(!r.remove("a", a));
        assert!(r.remove("a", b));
        assert!(!r.contains("a"));
        assert_eq!(r.deliver_all(&s, &X, &None), 0);
    }

    #[test]
    fn group_skips_dropped_member() {
        let r = Registry::default();
        let s: Arc<str> = "a".into();
        let (_, rx1, _) = r.add(&s, Some("g"));
        let (_, mut rx2, _) = r.add(&s, Some("g"));
        drop(rx1);
        for _ in 0..3 {
            assert!(r.deliver_group(&s, "g", &X, &None));
        }
        assert_eq!(std::iter::from_fn(|| rx2.try_recv().ok()).count(), 3);
    }
}
