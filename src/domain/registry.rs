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

/// The hasher of one part of a [`ShardedMap`] (and of the queue's heaps).
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardHasher;

impl std::hash::BuildHasher for ShardHasher {
    type Hasher = ShardHash;

    fn build_hasher(&self) -> ShardHash {
        ShardHash(0)
    }
}

/// Keeps a protocol number's low bits as they are and mixes only the top
/// seven. The table picks a bucket by the low bits, so numbers issued one
/// after another land in neighbouring buckets: the million inserts of a
/// restart and each admission's touch memory the previous one warmed,
/// instead of a random cache line of a table of tens of megabytes. The top
/// seven bits are the tag compared in each probe, mixed so that neighbours
/// do not share it. The parts take every ~32nd number in a scrambled
/// pattern ([`shard_of`]), so a part's numbers do not fill one run of
/// buckets (which would make a lookup of an absent number probe the whole
/// run); the numbers are the service's own, not a caller's.
#[derive(Debug, Clone, Copy)]
pub struct ShardHash(u64);

impl std::hash::Hasher for ShardHash {
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `Protocol` (one u64) is hashed; anything else still hashes.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        const TAG: u64 = !((1 << 57) - 1);
        (self.0 & !TAG) | (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) & TAG)
    }
}

/// One part of a [`ShardedMap`].
type Shard<V> = HashMap<Protocol, V, ShardHasher>;

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
    shards: [Shard<V>; SHARDS],
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Shard::default()),
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

    /// Places a part's hashes as a table with hashbrown's bucket count would
    /// (the bucket from the low bits, at most 7/8 full), probing linearly, a
    /// slot at a time (stricter than hashbrown's 16-slot groups): the mean and
    /// the longest run of occupied buckets a lookup of an absent number walks.
    fn runs(hashes: &[u64]) -> (f64, usize) {
        let buckets = (hashes.len() * 8 / 7 + 1).next_power_of_two().max(8);
        let mask = buckets - 1;
        let mut full = vec![false; buckets];
        for &h in hashes {
            let mut i = h as usize & mask;
            while full[i] {
                i = (i + 1) & mask;
            }
            full[i] = true;
        }
        // From each bucket, how many occupied ones until an empty one.
        let mut walk = vec![0usize; buckets];
        let start = full.iter().position(|f| !f).expect("never full");
        let mut run = 0;
        for k in 1..=buckets {
            let i = (start + buckets - k) & mask;
            run = if full[i] { run + 1 } else { 0 };
            walk[i] = run;
        }
        let mean = walk.iter().sum::<usize>() as f64 / buckets as f64;
        (mean, walk.into_iter().max().unwrap_or(0))
    }

    #[test]
    fn numbers_issued_in_a_row_spread_over_their_parts_buckets() {
        // The parts' hasher keeps a number's low bits, so the numbers choose
        // their buckets. Numbers in a row packed into one run of buckets would
        // make a lookup of an absent number walk the whole run (a part of
        // 300 000 numbers in a row: a run of 300 000); the parts' scrambled
        // shares prevent that. For scale, foldhash's random hashes of the same
        // numbers gave worst means of 3–28 and longest runs of 9–367 here.
        use std::hash::BuildHasher;
        for year in [2026, 2027] {
            // A small ward, a large one, and a window after many calls.
            for (first, live) in [(1, 300), (1, 200_000), (4_999_000, 300_000)] {
                let mut parts: Vec<Vec<u64>> = vec![Vec::new(); SHARDS];
                for n in first..first + live {
                    let protocol = p(year, n);
                    parts[shard_of(protocol)].push(ShardHasher.hash_one(protocol));
                }
                for (part, hashes) in parts.iter().enumerate() {
                    let (mean, longest) = runs(hashes);
                    assert!(
                        mean < 24.0 && longest <= 64,
                        "{year}, {live} from {first}, part {part}: mean {mean:.1}, longest {longest}"
                    );
                }
            }
        }
        // Neighbours differ in the tag compared at each probe (the top seven bits).
        let tags: std::collections::HashSet<u64> = (1..=128)
            .map(|n| ShardHasher.hash_one(p(2026, n)) >> 57)
            .collect();
        assert!(tags.len() > 64, "{} distinct tags of 128", tags.len());
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
