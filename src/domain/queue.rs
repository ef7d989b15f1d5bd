//! One unit's queues. The treatment queue is one arrival-ordered queue per
//! colour, so "colour rank, then `arrived_at`, then protocol" falls out of
//! asking the colours in rank order, and a call restricted to some colours
//! never scans the others.

use std::cmp::Reverse;
use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use priority_queue::PriorityQueue;

use super::patient::Protocol;
use super::registry::{shard_of, ShardHasher, SHARDS};
use super::scale::Rank;

/// The order within one queue: earlier arrival first, then the lower protocol.
pub type ArrivalKey = (DateTime<Utc>, Protocol);

/// One heap of an [`ArrivalQueue`], keyed by protocol.
type Heap = PriorityQueue<Protocol, Reverse<ArrivalKey>, ShardHasher>;

/// Keys per block of an [`ArrivalQueue`]; a block is split when it exceeds twice this.
#[cfg(not(test))]
const BLOCK: usize = 1024;
/// Tiny blocks in tests, so splits and block removals happen with few patients.
#[cfg(test)]
const BLOCK: usize = 4;

/// Patients in arrival order.
///
/// The call order is a `priority-queue` (a max-heap, so keys are reversed):
/// who is next, taking them out, and finding a patient's key are O(log n).
/// It is split in [`SHARDS`] heaps by protocol number, the next patient being
/// the first of their firsts: a heap's map grows by moving every entry at
/// once, under the department lock, and one heap of 917 504 patients stalled
/// that admission ~47 ms; each part grows on its own, in a different one.
/// A heap cannot say where a patient stands, and every patient view shows
/// that place, so the same keys are also kept sorted in blocks of at most
/// `2 * BLOCK`: a place is two binary searches plus the sizes of the blocks
/// before it, about n/BLOCK additions instead of a scan of the queue.
#[derive(Debug, Default, Clone)]
pub struct ArrivalQueue {
    heaps: [Heap; SHARDS],
    /// Non-empty, each sorted; concatenated they are the queue in call order.
    blocks: Vec<VecDeque<ArrivalKey>>,
}

impl ArrivalQueue {
    /// Adds a patient, or moves them if already queued (a new arrival time).
    pub fn push(&mut self, protocol: Protocol, arrived_at: DateTime<Utc>) {
        let key = (arrived_at, protocol);
        if let Some(Reverse(old)) = self.heap_mut(protocol).push(protocol, Reverse(key)) {
            self.remove_key(old);
        }
        self.insert_key(key);
    }

    pub fn remove(&mut self, protocol: Protocol) -> bool {
        match self.heap_mut(protocol).remove(&protocol) {
            Some((_, Reverse(key))) => self.remove_key(key),
            None => false,
        }
    }

    #[cfg(test)]
    pub fn contains(&self, protocol: Protocol) -> bool {
        self.heap(protocol).get(&protocol).is_some()
    }

    pub fn peek(&self) -> Option<ArrivalKey> {
        self.heaps
            .iter()
            .filter_map(|h| h.peek().map(|(_, Reverse(key))| *key))
            .min()
    }

    /// Takes out the first patient (calls peek, then remove, so nothing changes on a refusal).
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<Protocol> {
        let (_, protocol) = self.peek()?;
        self.remove(protocol);
        Some(protocol)
    }

    pub fn len(&self) -> usize {
        self.heaps.iter().map(Heap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.heaps.iter().all(Heap::is_empty)
    }

    /// 0-based place of `protocol`, or `None` if absent.
    pub fn rank_of(&self, protocol: Protocol) -> Option<usize> {
        let Reverse(key) = *self.heap(protocol).get_priority(&protocol)?;
        let b = self.block_of(&key);
        let within = self.blocks.get(b)?.binary_search(&key).ok()?;
        Some(self.len_before(b) + within)
    }

    /// Protocols at places `skip..skip + take` in order.
    pub fn ordered(&self, mut skip: usize, take: usize) -> Vec<Protocol> {
        let mut out = Vec::with_capacity(take.min(self.len().saturating_sub(skip)));
        for block in &self.blocks {
            if out.len() >= take {
                break;
            }
            if skip >= block.len() {
                skip -= block.len();
                continue;
            }
            let want = take - out.len();
            out.extend(block.iter().skip(skip).take(want).map(|(_, p)| *p));
            skip = 0;
        }
        out
    }

    /// Every key, in call order; for counts that depend on more than arrival.
    pub fn keys(&self) -> impl Iterator<Item = &ArrivalKey> {
        self.blocks.iter().flatten()
    }

    /// How many patients arrived at or before `t`: a prefix of the order, found
    /// by binary search, so the board's overdue count never walks the queue.
    pub fn arrived_by(&self, t: DateTime<Utc>) -> usize {
        let full = self
            .blocks
            .partition_point(|b| b.back().is_some_and(|(arrived, _)| *arrived <= t));
        let within = self
            .blocks
            .get(full)
            .map_or(0, |b| b.partition_point(|(arrived, _)| *arrived <= t));
        self.len_before(full) + within
    }

    fn heap(&self, protocol: Protocol) -> &Heap {
        &self.heaps[shard_of(protocol)]
    }

    fn heap_mut(&mut self, protocol: Protocol) -> &mut Heap {
        &mut self.heaps[shard_of(protocol)]
    }

    /// How many keys the blocks before block `b` hold.
    fn len_before(&self, b: usize) -> usize {
        self.blocks[..b].iter().map(VecDeque::len).sum()
    }

    /// The first block whose last key is not below `key` (`blocks.len()` if none).
    fn block_of(&self, key: &ArrivalKey) -> usize {
        self.blocks
            .partition_point(|b| b.back().is_some_and(|last| last < key))
    }

    fn insert_key(&mut self, key: ArrivalKey) {
        // Most keys are the latest arrival (an admission now; start-up reads
        // patients in protocol order): those go to the end without the two
        // binary searches, each a cache miss per step at a million waiting.
        let last = self.blocks.len().saturating_sub(1);
        let b = match self.blocks.last().and_then(VecDeque::back) {
            Some(back) if *back < key => last,
            _ => self.block_of(&key).min(last),
        };
        let Some(block) = self.blocks.get_mut(b) else {
            self.blocks.push(VecDeque::from([key]));
            return;
        };
        if block.back().is_some_and(|back| *back < key) {
            block.push_back(key);
        } else {
            let at = block.partition_point(|k| *k < key);
            block.insert(at, key);
        }
        if block.len() > 2 * BLOCK {
            let tail = block.split_off(BLOCK);
            self.blocks.insert(b + 1, tail);
        }
    }

    fn remove_key(&mut self, key: ArrivalKey) -> bool {
        let b = self.block_of(&key);
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        let Ok(at) = block.binary_search(&key) else {
            return false;
        };
        block.remove(at);
        if block.is_empty() {
            self.blocks.remove(b);
        }
        true
    }
}

/// The treatment queue: one [`ArrivalQueue`] per colour, indexed by rank.
#[derive(Debug, Clone)]
pub struct TreatmentQueue {
    by_colour: Vec<ArrivalQueue>,
}

impl TreatmentQueue {
    pub fn new(colours: usize) -> Self {
        Self {
            by_colour: vec![ArrivalQueue::default(); colours],
        }
    }

    /// Queues a patient in the queue of their colour; false for a rank not in the scale.
    pub fn push(&mut self, rank: Rank, protocol: Protocol, arrived_at: DateTime<Utc>) -> bool {
        match self.by_colour.get_mut(rank) {
            Some(q) => {
                q.push(protocol, arrived_at);
                true
            }
            None => false,
        }
    }

    pub fn remove(&mut self, rank: Rank, protocol: Protocol) -> bool {
        self.by_colour
            .get_mut(rank)
            .is_some_and(|q| q.remove(protocol))
    }

    /// The next patient to call among the colours `allowed` accepts.
    pub fn peek_next(&self, allowed: impl Fn(Rank) -> bool) -> Option<Protocol> {
        self.by_colour
            .iter()
            .enumerate()
            .filter(|(r, _)| allowed(*r))
            .find_map(|(_, q)| q.peek())
            .map(|(_, p)| p)
    }

    /// Takes out the next patient to call among the colours `allowed` accepts.
    #[cfg(test)]
    pub fn pop_next(&mut self, allowed: impl Fn(Rank) -> bool) -> Option<(Rank, Protocol)> {
        let rank = (0..self.by_colour.len())
            .find(|&r| allowed(r) && self.by_colour.get(r).is_some_and(|q| !q.is_empty()))?;
        self.by_colour.get_mut(rank)?.pop().map(|p| (rank, p))
    }

    pub fn len(&self) -> usize {
        self.by_colour.iter().map(ArrivalQueue::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_colour.iter().all(ArrivalQueue::is_empty)
    }

    /// The queue of each colour, most urgent first.
    pub fn colours(&self) -> impl Iterator<Item = &ArrivalQueue> {
        self.by_colour.iter()
    }

    /// 0-based place in call order.
    pub fn rank_of(&self, rank: Rank, protocol: Protocol) -> Option<usize> {
        let ahead: usize = self
            .by_colour
            .get(..rank)?
            .iter()
            .map(ArrivalQueue::len)
            .sum();
        self.by_colour
            .get(rank)?
            .rank_of(protocol)
            .map(|r| ahead + r)
    }

    /// Protocols at places `skip..skip + take` in call order.
    pub fn ordered(&self, mut skip: usize, mut take: usize) -> Vec<Protocol> {
        let mut out = Vec::new();
        for q in &self.by_colour {
            if take == 0 {
                break;
            }
            if skip >= q.len() {
                skip -= q.len();
                continue;
            }
            let page = q.ordered(skip, take);
            take -= page.len();
            skip = 0;
            out.extend(page);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + chrono::TimeDelta::minutes(min)
    }
    fn p(n: u64) -> Protocol {
        Protocol::new(2026, n).unwrap()
    }

    #[test]
    fn a_more_urgent_colour_is_called_before_an_earlier_less_urgent_one() {
        let mut q = TreatmentQueue::new(4);
        q.push(1, p(1), t(0));
        q.push(0, p(2), t(5));
        assert_eq!(q.pop_next(|_| true), Some((0, p(2))));
        assert_eq!(q.pop_next(|_| true), Some((1, p(1))));
        assert_eq!(q.pop_next(|_| true), None);
    }

    #[test]
    fn within_a_colour_earlier_arrival_then_lower_protocol_goes_first() {
        let mut q = TreatmentQueue::new(2);
        q.push(1, p(3), t(1));
        q.push(1, p(2), t(1));
        q.push(1, p(9), t(0));
        assert_eq!(q.ordered(0, 10), vec![p(9), p(2), p(3)]);
        assert_eq!(q.rank_of(1, p(3)), Some(2));
    }

    #[test]
    fn a_call_restricted_to_some_colours_skips_the_others() {
        let mut q = TreatmentQueue::new(3);
        q.push(0, p(1), t(0));
        q.push(2, p(2), t(0));
        assert_eq!(q.pop_next(|r| r == 2), Some((2, p(2))));
        assert_eq!(q.pop_next(|r| r == 1), None);
        assert_eq!(q.len(), 1);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(u64, i64),
        /// Pushed as the latest arrival so far (the path admissions take).
        PushLatest(u64),
        Remove(u64),
        Pop,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (1u64..60, 0i64..30).prop_map(|(p, m)| Op::Push(p, m)),
            3 => (1u64..60).prop_map(Op::PushLatest),
            1 => (1u64..60).prop_map(Op::Remove),
            1 => Just(Op::Pop),
        ]
    }

    proptest::proptest! {
        /// The blocked list answers exactly as a plain sorted set would.
        #[test]
        fn arrival_queue_matches_a_sorted_set(ops in proptest::collection::vec(op(), 0..300)) {
            use std::collections::{BTreeSet, HashMap};
            let mut q = ArrivalQueue::default();
            let mut set: BTreeSet<ArrivalKey> = BTreeSet::new();
            let mut at: HashMap<Protocol, DateTime<Utc>> = HashMap::new();
            let mut latest = 30;
            for op in ops {
                let op = match op {
                    Op::PushLatest(n) => {
                        latest += 1;
                        Op::Push(n, latest)
                    }
                    op => op,
                };
                match op {
                    Op::PushLatest(_) => unreachable!(),
                    Op::Push(n, m) => {
                        if let Some(old) = at.insert(p(n), t(m)) {
                            set.remove(&(old, p(n)));
                        }
                        set.insert((t(m), p(n)));
                        q.push(p(n), t(m));
                    }
                    Op::Remove(n) => {
                        let had = at.remove(&p(n)).map(|old| set.remove(&(old, p(n)))).is_some();
                        proptest::prop_assert_eq!(q.remove(p(n)), had);
                    }
                    Op::Pop => {
                        let first = set.pop_first();
                        if let Some((_, proto)) = first {
                            at.remove(&proto);
                        }
                        proptest::prop_assert_eq!(q.pop(), first.map(|(_, proto)| proto));
                    }
                }
                let sorted: Vec<ArrivalKey> = set.iter().copied().collect();
                proptest::prop_assert_eq!(q.len(), sorted.len());
                proptest::prop_assert_eq!(q.is_empty(), sorted.is_empty());
                proptest::prop_assert_eq!(q.peek(), sorted.first().copied());
                proptest::prop_assert_eq!(q.keys().copied().collect::<Vec<_>>(), sorted.clone());
                for b in &q.blocks {
                    proptest::prop_assert!(!b.is_empty() && b.len() <= 2 * BLOCK);
                }
                for (i, (_, proto)) in sorted.iter().enumerate() {
                    proptest::prop_assert!(q.contains(*proto));
                    proptest::prop_assert_eq!(q.rank_of(*proto), Some(i));
                }
                proptest::prop_assert_eq!(q.rank_of(p(99)), None);
                for m in (-1..31).chain([latest - 1, latest, latest + 1]) {
                    let by = sorted.iter().filter(|(arrived, _)| *arrived <= t(m)).count();
                    proptest::prop_assert_eq!(q.arrived_by(t(m)), by);
                }
                let all: Vec<Protocol> = sorted.iter().map(|(_, proto)| *proto).collect();
                for (skip, take) in [(0, 3), (2, 5), (7, 100), (0, usize::MAX), (100, 1)] {
                    let want: Vec<Protocol> = all.iter().skip(skip).take(take).copied().collect();
                    proptest::prop_assert_eq!(q.ordered(skip, take), want);
                }
            }
        }
    }

    #[test]
    fn pages_span_colours_in_call_order() {
        let mut q = TreatmentQueue::new(3);
        for i in 0..5 {
            q.push(2, p(10 + i), t(i as i64));
            q.push(0, p(20 + i), t(i as i64));
        }
        let all = q.ordered(0, 100);
        assert_eq!(all.len(), 10);
        assert_eq!(q.ordered(3, 4), all[3..7].to_vec());
        assert_eq!(q.ordered(9, 5), all[9..].to_vec());
        assert!(q.ordered(10, 5).is_empty());
        for (i, proto) in all.iter().enumerate() {
            let rank = if proto.sequence() >= 20 { 0 } else { 2 };
            assert_eq!(q.rank_of(rank, *proto), Some(i));
        }
    }
}
