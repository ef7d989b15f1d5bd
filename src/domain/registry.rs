//! Every patient of the retention window, by protocol number.

use std::collections::HashMap;
use std::ops::Index;

use super::patient::{Patient, Protocol};

/// A map keyed by protocol number. The numbers are issued by the service, so
/// a fast hasher (seeded per process) is enough; the default SipHash showed
/// as ~7 % of rebuilding a million patients at start-up.
pub type ProtocolMap<V> = HashMap<Protocol, V, foldhash::fast::RandomState>;

/// A map of patients whose records are boxed, so that growing it moves
/// pointers, not whole records: unboxed, the rehash at ~460 000 patients moves
/// ~160 MB and held the department lock for ~250 ms (benches/RESULTS.md).
#[derive(Debug, Clone, Default)]
pub struct Patients(ProtocolMap<Box<Patient>>);

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
        &self.0[protocol]
    }
}
