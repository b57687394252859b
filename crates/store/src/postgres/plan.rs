//! Turns the mutations of a commit group into a few bulk statements: range deletes, then point
//! deletes and upserts of each key's final state. Later mutations (and later transactions of the
//! group) win, exactly as if every mutation ran one by one.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::conflict::apply_atomic;
use crate::driver::{KeyRange, Mutation};

use super::schema::SHORT_KEY_MAX;

/// The combined effect of a group's mutations.
#[derive(Default, Debug)]
pub(crate) struct WritePlan<'a> {
    /// Ranges to delete before the point writes.
    pub(crate) clears: Vec<&'a KeyRange>,
    /// The final state of every key written point-wise: `None` deletes it.
    pub(crate) keys: BTreeMap<&'a [u8], Option<Cow<'a, [u8]>>>,
}

impl<'a> WritePlan<'a> {
    /// Adds one transaction's mutations. `committed` holds the committed value (before the
    /// group) of every key an atomic operation of the group touches; a key absent from it has
    /// no value.
    pub(crate) fn add(&mut self, mutations: &'a [Mutation], committed: &HashMap<Vec<u8>, Vec<u8>>) {
        for m in mutations {
            match m {
                Mutation::Set { key, value } => {
                    self.keys.insert(key, Some(Cow::Borrowed(value)));
                }
                Mutation::Clear { key } => {
                    self.keys.insert(key, None);
                }
                Mutation::ClearRange(range) => {
                    if range.begin >= range.end {
                        continue;
                    }
                    for (_, v) in self.keys.range_mut::<[u8], _>((
                        std::ops::Bound::Included(range.begin.as_slice()),
                        std::ops::Bound::Excluded(range.end.as_slice()),
                    )) {
                        *v = None;
                    }
                    self.clears.push(range);
                }
                Mutation::Atomic { key, op, param } => {
                    let current: Option<&[u8]> = match self.keys.get(key.as_slice()) {
                        Some(state) => state.as_deref(),
                        None if self.cleared(key) => None,
                        None => committed.get(key).map(Vec::as_slice),
                    };
                    let result = apply_atomic(*op, current, param).map(Cow::Owned);
                    self.keys.insert(key, result);
                }
            }
        }
    }

    /// Whether a range clear of the group covers `key`.
    fn cleared(&self, key: &[u8]) -> bool {
        self.clears
            .iter()
            .any(|r| r.begin.as_slice() <= key && key < r.end.as_slice())
    }

    /// Statement parameters, with keys split between the short-key and long-key tables.
    pub(crate) fn params(&self) -> PlanParams<'_> {
        let mut p = PlanParams::default();
        for r in &self.clears {
            p.clear_begins.push(r.begin.as_slice());
            p.clear_ends.push(r.end.as_slice());
        }
        for (key, state) in &self.keys {
            let long = key.len() > SHORT_KEY_MAX;
            match state {
                Some(value) if long => {
                    p.upsert_long_keys.push(key);
                    p.upsert_long_values.push(value.as_ref());
                }
                Some(value) => {
                    p.upsert_keys.push(key);
                    p.upsert_values.push(value.as_ref());
                }
                None if long => p.delete_long_keys.push(key),
                None => p.delete_keys.push(key),
            }
        }
        p
    }
}

/// Array parameters of the bulk statements.
#[derive(Default, Debug)]
pub(crate) struct PlanParams<'p> {
    pub(crate) clear_begins: Vec<&'p [u8]>,
    pub(crate) clear_ends: Vec<&'p [u8]>,
    pub(crate) delete_keys: Vec<&'p [u8]>,
    pub(crate) upsert_keys: Vec<&'p [u8]>,
    pub(crate) upsert_values: Vec<&'p [u8]>,
    pub(crate) delete_long_keys: Vec<&'p [u8]>,
    pub(crate) upsert_long_keys: Vec<&'p [u8]>,
    pub(crate) upsert_long_values: Vec<&'p [u8]>,
}

/// Sorts ranges and merges overlapping or touching ones, dropping empty ones.
pub(crate) fn normalize(ranges: &[KeyRange]) -> Vec<KeyRange> {
    let mut sorted: Vec<&KeyRange> = ranges.iter().filter(|r| r.begin < r.end).collect();
    sorted.sort_unstable_by(|a, b| a.begin.cmp(&b.begin));
    let mut out: Vec<KeyRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.begin <= last.end => {
                if r.end > last.end {
                    last.end.clone_from(&r.end);
                }
            }
            _ => out.push(r.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::AtomicOp;

    fn set(k: &[u8], v: &[u8]) -> Mutation {
        Mutation::Set {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    fn add(k: &[u8], d: i64) -> Mutation {
        Mutation::Atomic {
            key: k.to_vec(),
            op: AtomicOp::Add,
            param: d.to_le_bytes().to_vec(),
        }
    }

    fn clear_range(b: &[u8], e: &[u8]) -> Mutation {
        Mutation::ClearRange(KeyRange {
            begin: b.to_vec(),
            end: e.to_vec(),
        })
    }

    #[test]
    fn later_mutations_win_across_transactions() {
        let committed = HashMap::from([(b"n".to_vec(), 10i64.to_le_bytes().to_vec())]);
        let first = vec![set(b"a", b"1"), add(b"n", 5), set(b"c", b"x")];
        let second = vec![clear_range(b"b", b"d"), add(b"n", 1), add(b"c", 2)];
        let mut plan = WritePlan::default();
        plan.add(&first, &committed);
        plan.add(&second, &committed);
        let p = plan.params();
        assert_eq!(p.clear_begins, vec![b"b".as_slice()]);
        assert_eq!(p.clear_ends, vec![b"d".as_slice()]);
        assert_eq!(p.delete_keys, Vec::<&[u8]>::new());
        assert_eq!(p.upsert_keys, vec![b"a".as_slice(), b"c", b"n"]);
        // `c` was cleared by the range before the add, so the add starts from nothing.
        assert_eq!(
            p.upsert_values,
            vec![
                b"1".as_slice(),
                2i64.to_le_bytes().as_slice(),
                16i64.to_le_bytes().as_slice()
            ]
        );
    }

    #[test]
    fn range_clear_deletes_earlier_point_writes() {
        let committed = HashMap::new();
        let m = vec![set(b"k1", b"v"), clear_range(b"k", b"l"), set(b"k2", b"w")];
        let mut plan = WritePlan::default();
        plan.add(&m, &committed);
        let p = plan.params();
        assert_eq!(p.delete_keys, vec![b"k1".as_slice()]);
        assert_eq!(p.upsert_keys, vec![b"k2".as_slice()]);
    }

    #[test]
    fn long_keys_go_to_their_own_table() {
        let long = vec![b'x'; SHORT_KEY_MAX + 1];
        let short = vec![b'x'; SHORT_KEY_MAX];
        let m = vec![
            set(&long, b"1"),
            set(&short, b"2"),
            Mutation::Clear {
                key: [long.as_slice(), b"y"].concat(),
            },
        ];
        let mut plan = WritePlan::default();
        plan.add(&m, &HashMap::new());
        let p = plan.params();
        assert_eq!(p.upsert_keys, vec![short.as_slice()]);
        assert_eq!(p.upsert_long_keys, vec![long.as_slice()]);
        assert_eq!(p.upsert_long_values, vec![b"1".as_slice()]);
        assert_eq!(p.delete_long_keys.len(), 1);
        assert!(p.delete_keys.is_empty());
    }

    #[test]
    fn empty_ranges_are_ignored() {
        let mut plan = WritePlan::default();
        let m = vec![clear_range(b"z", b"a")];
        plan.add(&m, &HashMap::new());
        assert!(plan.clears.is_empty() && plan.keys.is_empty());
    }

    mod prop {
        use std::collections::{BTreeMap, HashMap};

        use proptest::prelude::*;

        use super::super::WritePlan;
        use crate::conflict::apply_atomic;
        use crate::driver::{AtomicOp, KeyRange, Mutation};

        fn key() -> impl Strategy<Value = Vec<u8>> {
            prop::collection::vec(0u8..4, 0..3)
        }

        fn mutation() -> impl Strategy<Value = Mutation> {
            prop_oneof![
                (key(), prop::collection::vec(any::<u8>(), 0..9))
                    .prop_map(|(key, value)| Mutation::Set { key, value }),
                key().prop_map(|key| Mutation::Clear { key }),
                (key(), key())
                    .prop_map(|(begin, end)| Mutation::ClearRange(KeyRange { begin, end })),
                (
                    key(),
                    prop_oneof![
                        Just(AtomicOp::Add),
                        Just(AtomicOp::Min),
                        Just(AtomicOp::Max),
                        Just(AtomicOp::CompareAndClear)
                    ],
                    prop::collection::vec(0u8..3, 0..9)
                )
                    .prop_map(|(key, op, param)| Mutation::Atomic {
                        key,
                        op,
                        param
                    }),
            ]
        }

        /// One mutation at a time, the way the semantics are defined.
        fn apply_one(db: &mut BTreeMap<Vec<u8>, Vec<u8>>, m: &Mutation) {
            match m {
                Mutation::Set { key, value } => {
                    db.insert(key.clone(), value.clone());
                }
                Mutation::Clear { key } => {
                    db.remove(key);
                }
                Mutation::ClearRange(r) => db.retain(|k, _| !(r.begin <= *k && *k < r.end)),
                Mutation::Atomic { key, op, param } => {
                    match apply_atomic(*op, db.get(key).map(Vec::as_slice), param) {
                        Some(v) => db.insert(key.clone(), v),
                        None => db.remove(key),
                    };
                }
            }
        }

        proptest! {
            #[test]
            fn plan_equals_sequential_application(
                initial in prop::collection::btree_map(key(), prop::collection::vec(0u8..3, 0..9), 0..6),
                txs in prop::collection::vec(prop::collection::vec(mutation(), 0..6), 1..4),
            ) {
                let mut expected = initial.clone();
                for m in txs.iter().flatten() {
                    apply_one(&mut expected, m);
                }
                // What the committer reads before the group: values of atomic keys.
                let committed: HashMap<Vec<u8>, Vec<u8>> = txs
                    .iter()
                    .flatten()
                    .filter_map(|m| match m {
                        Mutation::Atomic { key, .. } => {
                            initial.get(key).map(|v| (key.clone(), v.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                let mut plan = WritePlan::default();
                for tx in &txs {
                    plan.add(tx, &committed);
                }
                // What the statements do: range deletes, then point deletes and upserts.
                let p = plan.params();
                let mut got = initial.clone();
                for (b, e) in p.clear_begins.iter().zip(&p.clear_ends) {
                    got.retain(|k, _| !(*b <= k.as_slice() && k.as_slice() < *e));
                }
                for k in p.delete_keys.iter().chain(&p.delete_long_keys) {
                    got.remove(*k);
                }
                let upserts = p.upsert_keys.iter().zip(&p.upsert_values);
                let long_upserts = p.upsert_long_keys.iter().zip(&p.upsert_long_values);
                for (k, v) in upserts.chain(long_upserts) {
                    got.insert(k.to_vec(), v.to_vec());
                }
                prop_assert_eq!(got, expected);
            }
        }
    }

    #[test]
    fn normalize_merges_and_sorts() {
        let r = |b: &[u8], e: &[u8]| KeyRange {
            begin: b.to_vec(),
            end: e.to_vec(),
        };
        assert_eq!(
            normalize(&[r(b"c", b"d"), r(b"a", b"b"), r(b"b", b"c"), r(b"z", b"a")]),
            vec![r(b"a", b"d")]
        );
    }
}
