//! Every patient of the retention window, by protocol number.

use std::collections::HashMap;
use std::ops::Index;

use super::patient::{Patient, Protocol};

/// The hasher of everything keyed by protocol number. The numbers are issued
/// by the service, so a fast hasher (seeded per process) is enough; the
/// default SipHash showed as ~7 % of rebuilding a million patients at start-up.
pub type ProtocolHasher = foldhash::fast::RandomState;

/// A map keyed by protocol number.
pub type ProtocolMap<V> = HashMap<Protocol, V, ProtocolHasher>;

/// How many parts a map with an entry per patient is split into.
pub const SHARDS: usize = 32;

/// Of every [`CYCLE`] consecutive protocol numbers, part `i` takes `SHARDS + i`.
const CYCLE: usize = SHARDS * SHARDS + SHARDS * (SHARDS - 1) / 2;

/// The part of each number of a cycle: runs of 32, 33, ... 63.
const PART_OF: [u8; CYCLE] = {
    let mut parts = [0u8; CYCLE];
    let (mut part, mut at) = (0, 0);
    while part < SHARDS {
        let mut n = 0;
        while n < SHARDS + part {
            parts[at] = part as u8;
            at += 1;
            n += 1;
        }
        part += 1;
    }
    parts
};

/// The part a protocol number belongs to. The parts' shares differ, from 32
/// to 63 in 1 520, so each reaches its growth point at a different number of
/// patients: evenly filled parts would all grow within the same few dozen
/// admissions, the one long stall again (93 ms measured in 64 admissions at
/// 917 504, against 3 ms with these shares).
pub fn shard_of(protocol: Protocol) -> usize {
    // A multiplier prime to the cycle visits its places out of order, so a
    // part's numbers are spread through the cycle rather than in one run.
    PART_OF[(protocol.sequence().wrapping_mul(1021) % CYCLE as u64) as usize] as usize
}

/// A [`ProtocolMap`] split into [`SHARDS`] maps. A hash map grows by moving
/// every entry at once, under the department lock: one map of 917 504
/// patients stalled that admission ~30 ms, and the three such maps together
/// ~100 ms (benches/RESULTS.md, section 10). Split, each part grows on its
/// own, a small fraction of the work, at a different time.
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

    /// Boxed by the caller: start-up's reader thread boxes each record as
    /// it decodes it, off the thread that rebuilds the queues.
    pub fn insert(&mut self, protocol: Protocol, patient: Box<Patient>) {
        self.0.insert(protocol, patient);
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
    fn the_parts_grow_at_different_admissions() {
        // Growing a part moves its entries under the department lock; parts
        // growing close together add up to one long stall, as one map did.
        let mut m: ShardedMap<()> = ShardedMap::default();
        let mut capacity: Vec<usize> = m.shards.iter().map(HashMap::capacity).collect();
        let mut growths = Vec::new();
        for n in 1..=300_000 {
            let protocol = p(2026, n);
            m.insert(protocol, ());
            let part = shard_of(protocol);
            if m.shards[part].capacity() != capacity[part] {
                capacity[part] = m.shards[part].capacity();
                growths.push((n, m.shards[part].len()));
            }
        }
        // Once parts are worth moving, never two growing within 64 admissions
        // (one group commit's worth) of each other.
        let big: Vec<&(u64, usize)> = growths.iter().filter(|(_, len)| *len > 1000).collect();
        assert!(big.len() > 60, "{}", big.len());
        for pair in big.windows(2) {
            assert!(pair[1].0 - pair[0].0 > 64, "{pair:?}");
        }
        // Every part takes its share, whatever the year.
        for year in [2026, 2027] {
            let shares = (1..=CYCLE as u64).fold([0usize; SHARDS], |mut shares, n| {
                shares[shard_of(p(year, n))] += 1;
                shares
            });
            assert_eq!(shares.to_vec(), (SHARDS..2 * SHARDS).collect::<Vec<_>>());
        }
    }
}
