//! The department's side of escalation: firing what is due, acknowledging,
//! and listing alerts; each notification becomes durable changes.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::change::{Applied, Change};
use super::escalation::{self, Alert, Notification};
use super::patient::Status;
use super::{Department, DomainError, SYSTEM_ACTOR};

impl Department {
    /// The changes that record alert notifications: the alert, its history entry,
    /// a stream event and the webhook outbox entry.
    pub(super) fn alert_changes(
        &mut self,
        notes: Vec<Notification>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Vec<Change> {
        let mut changes = Vec::with_capacity(notes.len() * 4);
        for mut n in notes {
            let Some(p) = self.patients.get(&n.alert.protocol).cloned() else {
                continue;
            };
            // As `GET /alerts` shows it: receivers get the deadline too.
            n.alert = self.alert_view(n.alert, now);
            let a = &n.alert;
            let details = json!({
                "alert": a.id, "kind": a.kind, "level": a.level,
                "level_name": a.level_name, "state": a.state,
            });
            let mut display = self.display(&p, "alert", now);
            display.colour.clone_from(&a.colour);
            display.kind = Some(a.kind);
            display.level = Some(a.level);
            display.state = Some(a.state);
            changes.push(Change::Alert(Box::new(a.clone())));
            let audit = self.audit(&p, n.event.as_str(), actor, details, Some(display), now);
            changes.push(audit);
            changes.push(Change::Notify(Box::new(n)));
        }
        changes
    }

    /// Fires every escalation step due at `now`.
    pub fn escalate(&mut self, now: DateTime<Utc>) -> Applied<usize> {
        let notes = self.escalation.fire_due(now);
        let n = notes.len();
        let mut changes = self.alert_changes(notes, SYSTEM_ACTOR, now);
        // Last, as they are after this pass (settled, acknowledged since).
        let repaired = self.escalation.take_repaired();
        changes.extend(repaired.into_iter().map(|a| Change::Alert(Box::new(a))));
        Applied { value: n, changes }
    }

    /// The earliest moment the scheduler has something to fire.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.escalation.next_deadline()
    }

    /// Acknowledges an alert on behalf of `by` (recorded as the acknowledger).
    pub fn acknowledge(
        &mut self,
        id: u64,
        by: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<Applied<Alert>, DomainError> {
        let note = self
            .escalation
            .acknowledge(id, by, now)
            .map_err(|e| match e {
                escalation::AckError::Unknown(_) => DomainError::UnknownAlert(id),
                escalation::AckError::Resolved(_) => DomainError::InvalidTransition {
                    action: "acknowledge an alert of",
                    status: self
                        .escalation
                        .alert(id)
                        .and_then(|a| self.patients.get(&a.protocol))
                        .map_or(Status::Left, |p| p.status),
                },
            })?;
        let changes = match note {
            Some(n) => self.alert_changes(vec![n], actor, now),
            None => Vec::new(),
        };
        let alert = self
            .escalation
            .alert(id)
            .cloned()
            .ok_or(DomainError::UnknownAlert(id))?;
        Ok(Applied {
            value: self.alert_view(alert, now),
            changes,
        })
    }

    /// An alert with `waited_seconds` as of `now` (or as of its resolution).
    pub fn alert_view(&self, mut alert: Alert, now: DateTime<Utc>) -> Alert {
        // Alerts journaled before levels had labels.
        if alert.level_label.is_empty() {
            alert.level_label.clone_from(&alert.level_name);
        }
        alert.due_at = self
            .patients
            .get(&alert.protocol)
            .filter(|p| alert.is_active() && p.status.queue().is_some())
            .map(|p| self.deadline(p).1);
        if alert.is_active() {
            alert.waited_seconds = (now - alert.arrived_at).num_seconds().max(0);
        }
        alert
    }

    /// Alerts, newest first; `all` includes resolved ones.
    pub fn alerts(
        &self,
        unit: Option<&str>,
        all: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Alert>, DomainError> {
        if let Some(u) = unit {
            self.unit(u)?;
        }
        let mut list: Vec<Alert> = self
            .escalation
            .alerts()
            .filter(|a| all || a.is_active())
            .filter(|a| unit.is_none_or(|u| a.unit == u))
            .cloned()
            .map(|a| self.alert_view(a, now))
            .collect();
        list.sort_by_key(|a| std::cmp::Reverse(a.id));
        Ok(list)
    }
}
