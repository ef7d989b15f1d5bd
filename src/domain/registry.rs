//! Every patient of the retention window, by protocol number.

use std::collections::HashMap;
use std::ops::Index;

use super::patient::{Patient, Protocol};

/// A map keyed by protocol number. The numbers are issued by the service, so
/// a fast hasher (seeded per process) is enough; the default SipHash showed
/// as ~7 % of rebuilding a million patients at start-up.
pub type ProtocolMap<V> = HashMap<Protocol, V, foldhash::fast::RandomState>;

/// How many parts a map with an entry per patient is split into.
pub const SHARDS: usize = 32;

/// The part a protocol number belongs to. Numbers are consecutive, so
/// consecutive admissions go round the parts and the parts fill evenly.
pub fn shard_of(protocol: Protocol) -> usize {
    (protocol.sequence() % SHARDS as u64) as usize
}

/// A [`ProtocolMap`] split into [`SHARDS`] maps. A hash map grows by moving
/// every entry at once, under the department lock: one map of 917 504
/// patients stalled that admission ~30 ms, and the three such maps together
/// ~100 ms (benches/RESULTS.md, section 10). Split, each part grows on its
/// own, a thirty-second of the work, in a different admission.
#[derive(Debug, Clone)]
pub struct ShardedMap<V> {
    shards: [ProtocolMap<V>; SHARDS],
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| ProtocolMap::default()),
        }
    }
}

impl<V> ShardedMap<V> {
    pub fn get(&self, protocol: &Protocol) -> Option<&V> {
        self.shards[shard_of(*protocol)].get(protocol)
    }

    pub fn get_mut(&mut self, protocol: &Protocol) -> Option<&mut V> {
        self.shards[shard_of(*protocol)].get_mut(protocol)
    }

    pub fn insert(&mut self, protocol: Protocol, value: V) -> Option<V> {
        self.shards[shard_of(protocol)].insert(protocol, value)
    }

    pub fn remove(&mut self, protocol: &Protocol) -> Option<V> {
        self.shards[shard_of(*protocol)].remove(protocol)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }
}

/// A map of patients whose records are boxed, so that growing it moves
/// pointers, not whole records: unboxed, the rehash at ~460 000 patients moves
/// ~160 MB and held the department lock for ~250 ms (benches/RESULTS.md).
#[derive(Debug, Clone, Default)]
pub struct Patients(ShardedMap<Box<Patient>>);

impl Patients {
    pub fn get(&self, protocol: &Protocol) -> Option<&Patient> {
        self.0.get(protocol).map(Box::as_ref)
    }

    pub fn get_mut(&mut self, protocol: &Protocol) -> Option<&mut Patient> {
        self.0.get_mut(protocol).map(Box::as_mut)
    }

    pub fn insert(&mut self, protocol: Protocol, patient: Patient) {
        self.0.insert(protocol, Box::new(patient));
    }

    pub fn remove(&mut self, protocol: &Protocol) -> Option<Patient> {
        self.0.remove(protocol).map(|p| *p)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn values(&self) -> impl Iterator<Item = &Patient> {
        self.0.values().map(Box::as_ref)
    }
}

impl Index<&Protocol> for Patients {
    type Output = Patient;

    fn index(&self, protocol: &Protocol) -> &Patient {
        self.get(protocol).expect("a patient of the registry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(year: i32, n: u64) -> Protocol {
        Protocol::new(year, n).unwrap()
    }

    #[test]
    fn a_sharded_map_answers_as_one_map() {
        let mut m: ShardedMap<u64> = ShardedMap::default();
        for n in 1..=1000 {
            assert_eq!(m.insert(p(2026, n), n), None);
        }
        assert_eq!(m.insert(p(2026, 7), 70), Some(7));
        *m.get_mut(&p(2026, 8)).unwrap() = 80;
        assert_eq!(m.remove(&p(2026, 9)), Some(9));
        assert_eq!(m.remove(&p(2026, 9)), None);
        assert_eq!(m.get(&p(2027, 1)), None);
        assert_eq!(m.len(), 999);
        assert_eq!(m.get(&p(2026, 7)), Some(&70));
        assert_eq!(m.get(&p(2026, 8)), Some(&80));
        let sum: u64 = m.values().sum();
        assert_eq!(sum, (1..=1000).sum::<u64>() - 9 + 63 + 72);
    }

    #[test]
    fn consecutive_admissions_fill_the_parts_evenly() {
        // Even parts grow at different admissions, each a thirty-second of the
        // whole; lopsided ones would bring back one long stall. The year does
        // not change which part a sequence number goes to.
        for year in [2026, 2027] {
            let mut m: ShardedMap<()> = ShardedMap::default();
            for n in 1..=(SHARDS as u64 * 100) {
                m.insert(p(year, n), ());
            }
            assert!(m.shards.iter().all(|s| s.len() == 100), "{year}");
        }
    }
}
