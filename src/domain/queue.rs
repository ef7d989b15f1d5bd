//! One unit's queues. The treatment queue is one arrival-ordered queue per
//! colour, so "colour rank, then `arrived_at`, then protocol" falls out of
//! asking the colours in rank order, and a call restricted to some colours
//! never scans the others.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use priority_queue::PriorityQueue;

use super::patient::Protocol;
use super::protocol::Rank;

/// The order within one queue: earlier arrival first, then the lower protocol.
pub type ArrivalKey = (DateTime<Utc>, Protocol);

/// Patients in arrival order. `priority-queue` is a max-heap, so keys are reversed.
#[derive(Debug, Default, Clone)]
pub struct ArrivalQueue {
    heap: PriorityQueue<Protocol, Reverse<ArrivalKey>>,
}

impl ArrivalQueue {
    pub fn push(&mut self, protocol: Protocol, arrived_at: DateTime<Utc>) {
        self.heap.push(protocol, Reverse((arrived_at, protocol)));
    }

    pub fn remove(&mut self, protocol: Protocol) -> bool {
        self.heap.remove(&protocol).is_some()
    }

    pub fn contains(&self, protocol: Protocol) -> bool {
        self.heap.get(&protocol).is_some()
    }

    pub fn peek(&self) -> Option<ArrivalKey> {
        self.heap.peek().map(|(_, Reverse(key))| *key)
    }

    pub fn pop(&mut self) -> Option<Protocol> {
        self.heap.pop().map(|(p, _)| p)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// 0-based place of `protocol`, or `None` if absent. Linear in the queue's length.
    pub fn rank_of(&self, protocol: Protocol) -> Option<usize> {
        let Reverse(mine) = *self.heap.get_priority(&protocol)?;
        Some(
            self.heap
                .iter()
                .filter(|(_, Reverse(key))| *key < mine)
                .count(),
        )
    }

    /// Protocols at places `skip..skip + take` in order, selecting before sorting
    /// so a page near the front of a long queue costs O(n), not O(n log n).
    pub fn ordered(&self, skip: usize, take: usize) -> Vec<Protocol> {
        let end = skip.saturating_add(take).min(self.len());
        if skip >= end {
            return Vec::new();
        }
        let mut keys: Vec<ArrivalKey> = self.heap.iter().map(|(_, Reverse(k))| *k).collect();
        if end < keys.len() {
            keys.select_nth_unstable(end);
            keys.truncate(end);
        }
        keys.sort_unstable();
        keys[skip..end].iter().map(|(_, p)| *p).collect()
    }

    /// Every key, unordered; for counts that depend on more than arrival.
    pub fn keys(&self) -> impl Iterator<Item = &ArrivalKey> {
        self.heap.iter().map(|(_, Reverse(k))| k)
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

    pub fn push(&mut self, rank: Rank, protocol: Protocol, arrived_at: DateTime<Utc>) {
        self.by_colour[rank].push(protocol, arrived_at);
    }

    pub fn remove(&mut self, rank: Rank, protocol: Protocol) -> bool {
        self.by_colour[rank].remove(protocol)
    }

    /// The next patient to call among the colours `allowed` accepts.
    pub fn pop_next(&mut self, allowed: impl Fn(Rank) -> bool) -> Option<(Rank, Protocol)> {
        let rank =
            (0..self.by_colour.len()).find(|&r| allowed(r) && !self.by_colour[r].is_empty())?;
        self.by_colour[rank].pop().map(|p| (rank, p))
    }

    pub fn len(&self) -> usize {
        self.by_colour.iter().map(ArrivalQueue::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_colour.iter().all(ArrivalQueue::is_empty)
    }

    pub fn colour(&self, rank: Rank) -> &ArrivalQueue {
        &self.by_colour[rank]
    }

    /// 0-based place in call order.
    pub fn rank_of(&self, rank: Rank, protocol: Protocol) -> Option<usize> {
        let ahead: usize = self.by_colour[..rank].iter().map(ArrivalQueue::len).sum();
        self.by_colour[rank].rank_of(protocol).map(|r| ahead + r)
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
