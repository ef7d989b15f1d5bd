//! Escalation rules: for every patient in a queue, the next moment something
//! must be said about their wait, kept in an ordered index so the scheduler
//! asks only for what is due and learns when to wake next (as mini-redis
//! expires keys), never scanning every patient.
//!
//! One waiting episode (from entering a queue until leaving it) has at most one
//! alert, whose `kind` and `level` advance: warning (level 0) at
//! `warning_at_percent` of the maximum wait, then ladder level *i* at the
//! breach + `levels[i-1].after`.

use std::collections::{BTreeSet, HashMap};

use super::registry::ShardedMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ColourId, UnitId};
use super::patient::Protocol;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Warning,
    Breach,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Firing,
    Acknowledged,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Resolved => "resolved",
        }
    }
}

/// A notification's event name, as sent to webhooks and written to history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertEvent {
    #[serde(rename = "alert.firing")]
    Firing,
    #[serde(rename = "alert.acknowledged")]
    Acknowledged,
    #[serde(rename = "alert.resolved")]
    Resolved,
}

impl AlertEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Firing => "alert.firing",
            AlertEvent::Acknowledged => "alert.acknowledged",
            AlertEvent::Resolved => "alert.resolved",
        }
    }
}

/// What the patient's wait is measured against, fixed when the episode starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitContext {
    pub ticket: String,
    pub unit: UnitId,
    pub colour: Option<ColourId>,
    pub arrived_at: DateTime<Utc>,
    /// When the maximum wait started counting.
    pub clock_start: DateTime<Utc>,
    pub max_wait_ms: i64,
}

impl WaitContext {
    fn max_wait(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.max_wait_ms)
    }

    pub fn breach_at(&self) -> DateTime<Utc> {
        self.clock_start + self.max_wait()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: u64,
    pub protocol: Protocol,
    pub ticket: String,
    pub unit: UnitId,
    pub colour: Option<ColourId>,
    pub kind: AlertKind,
    pub level: u32,
    pub level_name: String,
    /// The level's label from the config, for people to read.
    #[serde(default)]
    pub level_label: String,
    pub state: AlertState,
    pub waited_seconds: i64,
    pub max_wait_seconds: i64,
    pub arrived_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    /// When the first breach (level 1) fired: at the deadline, or later when
    /// the deadline passed while the service was down or before the
    /// admission. Reports time the acknowledgement from here.
    #[serde(default)]
    pub breached_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    /// The level that was acknowledged; later levels are silenced only if it was a breach.
    pub acknowledged_level: Option<u32>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// While the alert is active and the patient waits: their deadline, on the
    /// colour's clock (as the patient view's `due_at`). Not kept: worked out
    /// when the alert is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

impl Alert {
    /// Resolved at `now`, and the notification that says so.
    fn resolve(&mut self, now: DateTime<Utc>) -> Notification {
        self.state = AlertState::Resolved;
        self.resolved_at = Some(now);
        self.waited_seconds = waited(self.arrived_at, now);
        Notification {
            event: AlertEvent::Resolved,
            alert: self.clone(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.state != AlertState::Resolved
    }
}

/// One alert notification: the alert as it was when the event happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: AlertEvent,
    pub alert: Alert,
}

/// A step of the ladder. Ordered: warning, then level 1, 2, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    Warning,
    Level(u32),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    #[error("no alert has id {0}")]
    Unknown(u64),
    #[error("alert {0} is resolved")]
    Resolved(u64),
}

#[derive(Debug, Clone)]
struct Episode {
    wait: WaitContext,
    alert: Option<u64>,
    /// The last step fired in this episode.
    fired: Option<Step>,
    next: Option<(DateTime<Utc>, Step)>,
}

/// A step of the ladder after the breach.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The id receivers route on (`physician-on-duty`).
    pub name: String,
    /// What people read (`Médico plantonista`).
    pub label: String,
    /// How long after the breach it fires.
    pub after: TimeDelta,
}

/// The ladder's shape, from config.
#[derive(Debug, Clone)]
pub struct Ladder {
    warning_at_percent: i64,
    /// In increasing `after` order; never empty.
    levels: Vec<Level>,
}

impl Ladder {
    /// `levels` in increasing `after` order.
    pub fn new(warning_at_percent: u32, mut levels: Vec<Level>) -> Self {
        // Without a ladder a breach still has to be said once.
        if levels.is_empty() {
            levels.push(Level {
                name: "breach".to_owned(),
                label: "breach".to_owned(),
                after: TimeDelta::zero(),
            });
        }
        Self {
            warning_at_percent: i64::from(warning_at_percent),
            levels,
        }
    }

    /// Ladder level `i` (1-based).
    fn level(&self, i: u32) -> Option<&Level> {
        self.levels.get((i as usize).checked_sub(1)?)
    }

    /// The name and label of a step.
    fn names(&self, step: Step) -> (&str, &str) {
        match step {
            Step::Warning => ("warning", "warning"),
            Step::Level(i) => self.level(i).map_or(("breach", "breach"), |l| {
                (l.name.as_str(), l.label.as_str())
            }),
        }
    }

    fn at(&self, wait: &WaitContext, step: Step) -> Option<DateTime<Utc>> {
        match step {
            Step::Warning => Some(
                wait.clock_start
                    + TimeDelta::milliseconds(wait.max_wait_ms * self.warning_at_percent / 100),
            ),
            Step::Level(i) => self.level(i).map(|l| wait.breach_at() + l.after),
        }
    }

    /// The step after `last`, if any: the warning only when there is a wait to warn about.
    fn after(&self, wait: &WaitContext, last: Option<Step>) -> Option<Step> {
        let warns = wait.max_wait_ms > 0 && self.warning_at_percent < 100;
        let next = match last {
            None if warns => Step::Warning,
            None | Some(Step::Warning) => Step::Level(1),
            Some(Step::Level(i)) => Step::Level(i + 1),
        };
        match next {
            Step::Level(i) if i as usize > self.levels.len() => None,
            s => Some(s),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Escalation {
    ladder: Ladder,
    /// Boxed and split so that growing the map (under the department lock,
    /// with hundreds of thousands waiting) moves few pointers, not ~150-byte
    /// episodes.
    episodes: ShardedMap<Box<Episode>>,
    /// Next deadline of every episode that has one; the protocol breaks ties.
    index: BTreeSet<(DateTime<Utc>, Protocol)>,
    alerts: HashMap<u64, Alert>,
    last_alert_id: u64,
    /// Running alerts read back whose target the config now in force
    /// changed, with the target they fired against: the first pass settles
    /// them ([`Escalation::settle`]).
    retargeted: Vec<(Protocol, i64)>,
    /// Alerts read back that their patient's record corrected (an older
    /// journal's transfer or kept re-triage, or a target the config
    /// changed): written back at the first pass, as they are then (a desk
    /// may have acknowledged one since), so the journal (reports, an
    /// instance that reads it next) says what memory does.
    repaired: Vec<u64>,
}

impl Escalation {
    pub fn new(ladder: Ladder) -> Self {
        Self {
            ladder,
            episodes: ShardedMap::default(),
            index: BTreeSet::new(),
            alerts: HashMap::new(),
            last_alert_id: 0,
            retargeted: Vec::new(),
            repaired: Vec::new(),
        }
    }

    /// Restores alerts read back from the journal (before episodes are re-entered).
    pub fn restore_alerts(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        for a in alerts {
            self.last_alert_id = self.last_alert_id.max(a.id);
            self.alerts.insert(a.id, a);
        }
    }

    /// Resolves the running alerts whose target a config change raised so
    /// that their step is no longer due at `now`: "wait exceeded" stayed on a
    /// patient with most of the new target ahead. Their episodes start over
    /// against that target. Only alerts whose target changed: judged by the
    /// clock alone, a new leader whose clock ran a little behind resolved
    /// and re-fired every alert it took over.
    fn settle(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        for (protocol, fired_against) in std::mem::take(&mut self.retargeted) {
            let Some(ep) = self.episodes.get(&protocol) else {
                continue;
            };
            let (Some(id), Some(step)) = (ep.alert, ep.fired) else {
                continue;
            };
            if self.ladder.at(&ep.wait, step).is_none_or(|due| due <= now) {
                continue;
            }
            if let Some(ep) = self.episodes.get_mut(&protocol) {
                ep.alert = None;
                ep.fired = None;
            }
            self.schedule(protocol);
            if let Some(a) = self.alerts.get_mut(&id).filter(|a| a.is_active()) {
                // As it was breached: against the target it fired under.
                a.max_wait_seconds = fired_against;
                out.push(a.resolve(now));
            }
        }
        if !out.is_empty() {
            tracing::warn!(
                resolved = out.len(),
                "alerts resolved at start-up: the config raised the targets they fired against"
            );
        }
        out
    }

    pub fn set_last_alert_id(&mut self, id: u64) {
        self.last_alert_id = self.last_alert_id.max(id);
    }

    /// The earliest moment anything is due, for the scheduler's sleep.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.index.first().map(|(at, _)| *at)
    }

    pub fn alert(&self, id: u64) -> Option<&Alert> {
        self.alerts.get(&id)
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.values()
    }

    fn schedule(&mut self, protocol: Protocol) {
        if let Some(ep) = self.episodes.get_mut(&protocol) {
            reschedule(&mut self.index, &self.ladder, &self.alerts, protocol, ep);
        }
    }

    /// A patient entered a queue again (re-triaged, back from a call): the
    /// running episode continues against the new wait, or a new one starts.
    pub fn enter(&mut self, protocol: Protocol, wait: WaitContext) {
        match self.episodes.get_mut(&protocol) {
            Some(ep) => {
                ep.wait = wait;
                reschedule(&mut self.index, &self.ladder, &self.alerts, protocol, ep);
            }
            None => self.start(protocol, wait, None),
        }
    }

    /// A patient new to the queues (just admitted, or read back at start-up
    /// with the alert that survived the restart, which then continues from
    /// the level it reached). Scheduled before it is stored: one search of
    /// the episodes per patient taken in, where `enter` needs two.
    pub fn start(&mut self, protocol: Protocol, wait: WaitContext, resumed: Option<&Alert>) {
        let ep = self.episode(wait, resumed);
        if let Some((at, _)) = ep.next {
            self.index.insert((at, protocol));
        }
        self.store(protocol, ep, None);
        if resumed.is_some() {
            self.take_back(protocol);
        }
    }

    /// [`Escalation::start`] for a patient read back at start-up, but the
    /// deadline goes to `deadlines` instead of the index, which
    /// [`Escalation::index_resumed`] then builds in one go once every patient
    /// is in. A million inserts at the tree's right edge, each comparing its
    /// way through every key of every node on the path, were ~17 % of the
    /// instructions of rebuilding at start-up.
    pub fn resume(
        &mut self,
        protocol: Protocol,
        wait: WaitContext,
        alert: Option<&Alert>,
        deadlines: &mut Vec<(DateTime<Utc>, Protocol)>,
    ) {
        let ep = self.episode(wait, alert);
        if let Some((at, _)) = ep.next {
            deadlines.push((at, protocol));
        }
        let has_alert = ep.alert.is_some();
        self.store(protocol, ep, Some(deadlines));
        if has_alert {
            self.take_back(protocol);
        }
    }

    /// A running alert read back: in line with its patient's wait (journals
    /// written before transfers and re-triages were recorded kept its old
    /// unit or colour: the patient's record wins), and noted for
    /// [`Escalation::settle`] if the config changed its target: same colour,
    /// another target. Another colour is a re-triage such a journal kept in
    /// memory only, which kept the alert as a re-triage does now; settled,
    /// its acknowledgement was lost and every level fired again.
    fn take_back(&mut self, protocol: Protocol) {
        let before = self
            .episodes
            .get(&protocol)
            .and_then(|ep| self.alerts.get(&ep.alert?))
            .map(|a| (a.max_wait_seconds, a.colour.clone()));
        if let (Some((fired_against, colour)), Some(now)) = (before, self.follow_wait(protocol)) {
            if now.colour == colour && now.max_wait_seconds != fired_against {
                self.retargeted.push((protocol, fired_against));
            }
            self.repaired.push(now.id);
        }
    }

    /// The alerts corrected at start-up as they are now, once (see `repaired`).
    pub fn take_repaired(&mut self) -> Vec<Alert> {
        let ids = std::mem::take(&mut self.repaired);
        ids.iter()
            .filter_map(|id| self.alerts.get(id).cloned())
            .collect()
    }

    /// Indexes the deadlines gathered by [`Escalation::resume`]; until then
    /// those episodes are never due.
    pub fn index_resumed(&mut self, deadlines: Vec<(DateTime<Utc>, Protocol)>) {
        if self.index.is_empty() {
            // Sorted, then built bottom-up in one pass.
            self.index = deadlines.into_iter().collect();
        } else {
            self.index.extend(deadlines);
        }
    }

    /// A new episode, scheduled, not yet stored or indexed.
    fn episode(&self, wait: WaitContext, resumed: Option<&Alert>) -> Box<Episode> {
        let fired = resumed.map(|a| match a.level {
            0 => Step::Warning,
            level => Step::Level(level),
        });
        let mut ep = Box::new(Episode {
            wait,
            alert: resumed.map(|a| a.id),
            fired,
            next: None,
        });
        ep.next = plan(&self.ladder, &self.alerts, &ep);
        ep
    }

    /// Stores a new episode. A patient already under escalation is not
    /// expected (a new patient has no episode); if there is one, its deadline
    /// must not stay behind in the index or in the `deferred` deadlines.
    fn store(
        &mut self,
        protocol: Protocol,
        ep: Box<Episode>,
        deferred: Option<&mut Vec<(DateTime<Utc>, Protocol)>>,
    ) {
        let next = ep.next;
        let Some(old) = self.episodes.insert(protocol, ep) else {
            return;
        };
        if let Some((at, _)) = old.next.filter(|&(at, _)| Some(at) != next.map(|n| n.0)) {
            self.index.remove(&(at, protocol));
            if let Some(deadlines) = deferred {
                if let Some(i) = deadlines.iter().position(|&d| d == (at, protocol)) {
                    deadlines.remove(i);
                }
            }
        }
    }

    /// The patient left the queue (called, left, re-triaged anew): the episode ends
    /// and its alert, if active, is resolved.
    pub fn leave(&mut self, protocol: Protocol, now: DateTime<Utc>) -> Option<Notification> {
        let ep = self.episodes.remove(&protocol)?;
        if let Some((at, _)) = ep.next {
            self.index.remove(&(at, protocol));
        }
        let alert = self.alerts.get_mut(&ep.alert?)?;
        alert.is_active().then(|| alert.resolve(now))
    }

    /// Whether `wait` gives the patient less time than the running episode
    /// does: a re-triage to a more urgent colour.
    pub fn is_stricter(&self, protocol: Protocol, wait: &WaitContext) -> bool {
        self.episodes
            .get(&protocol)
            .is_some_and(|ep| wait.max_wait_ms < ep.wait.max_wait_ms)
    }

    /// The patient was re-triaged to a colour already past its deadline, and
    /// no stricter: the episode and its alert go on, measured against the new
    /// target. Returns the alert changed, to be journaled (a restart would
    /// otherwise read back the old colour).
    pub fn retarget(&mut self, protocol: Protocol, wait: WaitContext) -> Option<Alert> {
        let Some(ep) = self.episodes.get_mut(&protocol) else {
            self.enter(protocol, wait);
            return None;
        };
        ep.wait = wait;
        let changed = self.follow_wait(protocol);
        self.schedule(protocol);
        changed
    }

    /// The patient moved to another unit, keeping their wait: the alert
    /// follows. Returns it, to be journaled: read back after a restart with
    /// its old unit, it was listed and escalated to the unit they had left.
    pub fn relocate(&mut self, protocol: Protocol, unit: &UnitId) -> Option<Alert> {
        self.episodes.get_mut(&protocol)?.wait.unit = unit.clone();
        self.follow_wait(protocol)
    }

    /// Brings the running alert of a patient's episode in line with its wait
    /// (unit, colour, target); the alert as it now is, if it changed.
    fn follow_wait(&mut self, protocol: Protocol) -> Option<Alert> {
        let ep = self.episodes.get(&protocol)?;
        let a = self.alerts.get_mut(&ep.alert?)?;
        let w = &ep.wait;
        let max_wait_seconds = w.max_wait_ms / 1000;
        if !a.is_active()
            || (a.unit == w.unit && a.colour == w.colour && a.max_wait_seconds == max_wait_seconds)
        {
            return None;
        }
        a.unit.clone_from(&w.unit);
        a.colour.clone_from(&w.colour);
        a.max_wait_seconds = max_wait_seconds;
        Some(a.clone())
    }

    /// Fires everything due at `now`, in deadline order. A step that is due
    /// together with a later one of the same episode is still fired, the
    /// warning included: after a restart or a late-recorded arrival the
    /// receivers see every level the contract promises, in order, once.
    pub fn fire_due(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        if !self.retargeted.is_empty() {
            out = self.settle(now);
        }
        while let Some(&(at, protocol)) = self.index.first() {
            if at > now {
                break;
            }
            self.index.pop_first();
            let Some(ep) = self.episodes.get_mut(&protocol) else {
                continue;
            };
            let Some((_, step)) = ep.next.take() else {
                continue;
            };
            ep.fired = Some(step);
            let wait = ep.wait.clone();
            let existing = ep.alert;
            let alert = self.raise(protocol, &wait, existing, step, now);
            if let Some(ep) = self.episodes.get_mut(&protocol) {
                ep.alert = Some(alert.id);
            }
            out.push(Notification {
                event: AlertEvent::Firing,
                alert,
            });
            self.schedule(protocol);
        }
        out
    }

    fn raise(
        &mut self,
        protocol: Protocol,
        wait: &WaitContext,
        existing: Option<u64>,
        step: Step,
        now: DateTime<Utc>,
    ) -> Alert {
        let (kind, level) = match step {
            Step::Warning => (AlertKind::Warning, 0),
            Step::Level(i) => (AlertKind::Breach, i),
        };
        let (level_name, level_label) = self.ladder.names(step);
        let (level_name, level_label) = (level_name.to_owned(), level_label.to_owned());
        if let Some(a) = existing.and_then(|id| self.alerts.get_mut(&id)) {
            a.kind = kind;
            a.level = level;
            a.level_name = level_name;
            a.level_label = level_label;
            a.state = AlertState::Firing;
            a.fired_at = now;
            if kind == AlertKind::Breach && a.breached_at.is_none() {
                a.breached_at = Some(now);
            }
            a.waited_seconds = waited(a.arrived_at, now);
            // A breach after an acknowledged warning is a new fact, unacknowledged.
            a.acknowledged_at = None;
            a.acknowledged_by = None;
            a.acknowledged_level = None;
            return a.clone();
        }
        self.last_alert_id += 1;
        let alert = Alert {
            id: self.last_alert_id,
            protocol,
            ticket: wait.ticket.clone(),
            unit: wait.unit.clone(),
            colour: wait.colour.clone(),
            kind,
            level,
            level_name,
            level_label,
            state: AlertState::Firing,
            waited_seconds: waited(wait.arrived_at, now),
            max_wait_seconds: wait.max_wait_ms / 1000,
            arrived_at: wait.arrived_at,
            fired_at: now,
            breached_at: (kind == AlertKind::Breach).then_some(now),
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledged_level: None,
            resolved_at: None,
            due_at: None,
        };
        self.alerts.insert(alert.id, alert.clone());
        alert
    }

    /// Acknowledges an alert. Acknowledging a breach stops the ladder; a warning's
    /// acknowledgement does not stop the breach. Acknowledging twice changes nothing.
    pub fn acknowledge(
        &mut self,
        id: u64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Notification>, AckError> {
        let alert = self.alerts.get_mut(&id).ok_or(AckError::Unknown(id))?;
        match alert.state {
            AlertState::Resolved => return Err(AckError::Resolved(id)),
            AlertState::Acknowledged => return Ok(None),
            AlertState::Firing => {}
        }
        alert.state = AlertState::Acknowledged;
        alert.acknowledged_at = Some(now);
        alert.waited_seconds = waited(alert.arrived_at, now);
        alert.acknowledged_by = Some(by.to_owned());
        alert.acknowledged_level = Some(alert.level);
        let notification = Notification {
            event: AlertEvent::Acknowledged,
            alert: alert.clone(),
        };
        let protocol = alert.protocol;
        self.schedule(protocol);
        Ok(Some(notification))
    }

    /// Forgets the resolved alerts of patients no longer kept (`kept` says
    /// who is). By age alone, a patient still waiting lost the alerts of an
    /// earlier wait resolved more than the retention ago.
    pub fn purge_resolved(&mut self, kept: impl Fn(Protocol) -> bool) -> Vec<u64> {
        let ids: Vec<u64> = self
            .alerts
            .values()
            .filter(|a| a.resolved_at.is_some() && !kept(a.protocol))
            .map(|a| a.id)
            .collect();
        for id in &ids {
            self.alerts.remove(id);
        }
        ids
    }

    #[cfg(test)]
    pub fn scheduled(&self) -> usize {
        self.index.len()
    }
}

/// Files an episode's next step in the deadline index, in place of the one
/// it had; none once its alert is acknowledged or the ladder is done.
fn reschedule(
    index: &mut BTreeSet<(DateTime<Utc>, Protocol)>,
    ladder: &Ladder,
    alerts: &HashMap<u64, Alert>,
    protocol: Protocol,
    ep: &mut Episode,
) {
    if let Some((at, _)) = ep.next.take() {
        index.remove(&(at, protocol));
    }
    ep.next = plan(ladder, alerts, ep);
    if let Some((at, _)) = ep.next {
        index.insert((at, protocol));
    }
}

/// An episode's next step and when it is due: none once its alert is
/// acknowledged (silenced) or the ladder is climbed.
fn plan(
    ladder: &Ladder,
    alerts: &HashMap<u64, Alert>,
    ep: &Episode,
) -> Option<(DateTime<Utc>, Step)> {
    let silenced = ep
        .alert
        .and_then(|id| alerts.get(&id))
        .is_some_and(|a| a.acknowledged_level.is_some_and(|l| l >= 1));
    if silenced {
        return None;
    }
    let step = ladder.after(&ep.wait, ep.fired)?;
    Some((ladder.at(&ep.wait, step)?, step))
}

fn waited(arrived_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - arrived_at).num_seconds().max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{colour_id, unit_id};
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn escalation() -> Escalation {
        let level = |name: &str, label: &str, after| Level {
            name: name.into(),
            label: label.into(),
            after,
        };
        Escalation::new(Ladder::new(
            80,
            vec![
                level("nursing-coordinator", "Coordenação", TimeDelta::zero()),
                level("physician-on-duty", "Plantonista", TimeDelta::minutes(15)),
            ],
        ))
    }

    fn wait(max_min: i64, start: DateTime<Utc>) -> WaitContext {
        WaitContext {
            ticket: "A001".into(),
            unit: unit_id("pa"),
            colour: Some(colour_id("yellow")),
            arrived_at: start,
            clock_start: start,
            max_wait_ms: max_min * 60_000,
        }
    }

    fn p(n: u64) -> Protocol {
        Protocol::new(2026, n).unwrap()
    }

    fn fired(ns: &[Notification]) -> Vec<(AlertEvent, AlertKind, u32)> {
        ns.iter()
            .map(|n| (n.event, n.alert.kind, n.alert.level))
            .collect()
    }

    #[test]
    fn a_wait_warns_then_breaches_then_climbs_the_ladder_never_early() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        assert_eq!(e.next_deadline(), Some(t(24)));
        assert!(e.fire_due(t(24) - TimeDelta::milliseconds(1)).is_empty());
        let n = e.fire_due(t(24));
        assert_eq!(fired(&n), vec![(AlertEvent::Firing, AlertKind::Warning, 0)]);
        assert_eq!(e.next_deadline(), Some(t(30)));
        let n2 = e.fire_due(t(30));
        assert_eq!(fired(&n2), vec![(AlertEvent::Firing, AlertKind::Breach, 1)]);
        assert_eq!(n2[0].alert.id, n[0].alert.id, "one alert per episode");
        assert_eq!(n2[0].alert.level_name, "nursing-coordinator");
        assert_eq!(n2[0].alert.level_label, "Coordenação");
        assert_eq!(e.next_deadline(), Some(t(45)));
        let n3 = e.fire_due(t(46));
        assert_eq!(fired(&n3), vec![(AlertEvent::Firing, AlertKind::Breach, 2)]);
        assert_eq!(n3[0].alert.level_name, "physician-on-duty");
        assert_eq!(e.next_deadline(), None, "each level fires once");
        assert!(e.fire_due(t(600)).is_empty());
    }

    #[test]
    fn a_red_patient_breaches_at_admission_without_a_warning() {
        let mut e = escalation();
        e.enter(p(1), wait(0, t(0)));
        let n = e.fire_due(t(0));
        assert_eq!(fired(&n), vec![(AlertEvent::Firing, AlertKind::Breach, 1)]);
    }

    #[test]
    fn acknowledging_a_breach_stops_the_ladder() {
        let mut e = escalation();
        e.enter(p(1), wait(0, t(0)));
        let id = e.fire_due(t(0))[0].alert.id;
        let ack = e.acknowledge(id, "enf. Ana", t(1)).unwrap().unwrap();
        assert_eq!(ack.event, AlertEvent::Acknowledged);
        assert_eq!(ack.alert.acknowledged_by.as_deref(), Some("enf. Ana"));
        assert_eq!(e.next_deadline(), None);
        assert!(e.fire_due(t(100)).is_empty());
        assert_eq!(
            e.acknowledge(id, "x", t(2)),
            Ok(None),
            "twice changes nothing"
        );
    }

    #[test]
    fn acknowledging_a_warning_does_not_silence_the_breach() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        let id = e.fire_due(t(24))[0].alert.id;
        e.acknowledge(id, "x", t(25)).unwrap();
        let n = e.fire_due(t(30));
        assert_eq!(fired(&n), vec![(AlertEvent::Firing, AlertKind::Breach, 1)]);
        assert_eq!(n[0].alert.state, AlertState::Firing);
        assert_eq!(n[0].alert.acknowledged_by, None);
        assert_eq!(
            fired(&e.fire_due(t(45))),
            vec![(AlertEvent::Firing, AlertKind::Breach, 2)]
        );
    }

    #[test]
    fn leaving_the_queue_resolves_the_alert_and_unschedules_it() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        e.fire_due(t(24));
        let n = e.leave(p(1), t(26)).unwrap();
        assert_eq!(n.event, AlertEvent::Resolved);
        assert_eq!(n.alert.resolved_at, Some(t(26)));
        assert_eq!(e.next_deadline(), None);
        assert!(e.acknowledge(n.alert.id, "x", t(27)).is_err());
        // Leaving before anything fired says nothing.
        e.enter(p(2), wait(30, t(0)));
        assert_eq!(e.leave(p(2), t(1)), None);
    }

    #[test]
    fn steps_due_together_all_fire_in_order_the_warning_included() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        let n = e.fire_due(t(50));
        assert_eq!(
            fired(&n),
            vec![
                (AlertEvent::Firing, AlertKind::Warning, 0),
                (AlertEvent::Firing, AlertKind::Breach, 1),
                (AlertEvent::Firing, AlertKind::Breach, 2)
            ]
        );
        assert!(n.iter().all(|x| x.alert.id == n[0].alert.id), "one alert");
    }

    #[test]
    fn a_resumed_episode_does_not_repeat_the_level_it_reached() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        let alert = e.fire_due(t(31)).pop().unwrap().alert;
        let mut r = escalation();
        r.restore_alerts([alert.clone()]);
        r.start(p(1), wait(30, t(0)), Some(&alert));
        assert_eq!(r.next_deadline(), Some(t(45)));
        let n = r.fire_due(t(46));
        assert_eq!(fired(&n), vec![(AlertEvent::Firing, AlertKind::Breach, 2)]);
        assert_eq!(n[0].alert.id, alert.id);
    }

    #[test]
    fn starting_over_an_episode_leaves_one_deadline() {
        let mut e = escalation();
        e.enter(p(1), wait(30, t(0)));
        let first = e.next_deadline().unwrap();
        e.start(p(1), wait(30, t(10)), None);
        assert_eq!(e.scheduled(), 1, "the old deadline is gone from the index");
        assert!(e.next_deadline().unwrap() > first);
        e.start(p(1), wait(30, t(10)), None);
        assert_eq!(e.scheduled(), 1, "the same deadline again is kept");
    }

    #[test]
    fn episodes_resumed_then_indexed_in_one_go_fire_as_if_started_one_by_one() {
        // Start-up gathers the deadlines and indexes them at the end; the
        // alerts must be the same, in the same order, as the live path's.
        let mut one_by_one = escalation();
        let mut resumed = escalation();
        // A patient whose breach survived a restart, to continue from level 1.
        let mut before = escalation();
        before.enter(p(7), wait(30, t(-40)));
        let alert = before.fire_due(t(-5)).pop().unwrap().alert;
        for e in [&mut one_by_one, &mut resumed] {
            e.restore_alerts([alert.clone()]);
        }
        let mut deadlines = Vec::new();
        for i in 1..=300 {
            // Colours interleaved, arrivals out of order: the gathered
            // deadlines are far from sorted.
            let (max_min, start) =
                [(0, t(i as i64 % 7)), (30, t(-(i as i64))), (120, t(3))][i as usize % 3];
            let survived = (i == 7).then_some(&alert);
            one_by_one.start(p(i), wait(max_min, start), survived);
            resumed.resume(p(i), wait(max_min, start), survived, &mut deadlines);
        }
        assert_eq!(
            resumed.next_deadline(),
            None,
            "nothing is due before the index is built"
        );
        resumed.index_resumed(deadlines);
        assert_eq!(resumed.scheduled(), one_by_one.scheduled());
        assert_eq!(resumed.next_deadline(), one_by_one.next_deadline());
        for minute in [0, 10, 24, 31, 60, 200] {
            let (a, b) = (one_by_one.fire_due(t(minute)), resumed.fire_due(t(minute)));
            assert_eq!(a, b, "at minute {minute}");
        }
        assert_eq!(resumed.next_deadline(), one_by_one.next_deadline());
    }

    #[test]
    fn resuming_a_patient_twice_leaves_one_deadline() {
        let mut e = escalation();
        let mut deadlines = Vec::new();
        e.resume(p(1), wait(30, t(0)), None, &mut deadlines);
        e.resume(p(1), wait(30, t(10)), None, &mut deadlines);
        e.index_resumed(deadlines);
        assert_eq!(e.scheduled(), 1);
        assert_eq!(e.next_deadline(), Some(t(34)));
        // Into an index that already holds live deadlines.
        let mut deadlines = Vec::new();
        e.resume(p(2), wait(30, t(-10)), None, &mut deadlines);
        e.index_resumed(deadlines);
        assert_eq!(e.scheduled(), 2);
        assert_eq!(e.next_deadline(), Some(t(14)));
    }

    #[test]
    fn growing_the_episode_map_moves_pointers_not_episodes() {
        // The map grows by rehashing every entry while the department lock is
        // held; with 458 752 unboxed episodes that stalled the scheduler ~100 ms.
        assert!(std::mem::size_of::<Episode>() > 100);
        let e = escalation();
        let entry = std::mem::size_of::<(Protocol, Box<Episode>)>();
        assert_eq!(entry, 16);
        let _: &ShardedMap<Box<Episode>> = &e.episodes;
    }

    #[test]
    fn the_index_holds_one_entry_per_waiting_patient() {
        let mut e = escalation();
        for i in 1..=1000 {
            e.enter(p(i), wait(30, t(0)));
        }
        assert_eq!(e.scheduled(), 1000);
        for i in 1..=500 {
            e.leave(p(i), t(1));
        }
        assert_eq!(e.scheduled(), 500);
        assert_eq!(e.fire_due(t(24)).len(), 500);
    }
}
