//! The metrics (docs/api.md, Metrics) on a registry the application owns. Counters
//! and histograms are fed from committed changes (the journal's observer), so
//! a dashboard never counts something that was rolled back; queue gauges are
//! read from the domain at scrape time. Labels carry units, colours, queues
//! and route patterns only: never a name or a protocol number.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::config::Config;
use crate::domain::escalation::{AlertEvent, AlertKind};
use crate::domain::patient::QueueKind;
use strum::VariantArray;

use crate::domain::{
    Change, Channel, ColourId, DeliveryOutcome, Department, NotifyEvent, Outbox, UnitId,
};

pub const PATIENTS_WAITING: &str = "triagem_patients_waiting";
pub const OLDEST_WAIT: &str = "triagem_oldest_wait_seconds";
pub const ADMISSIONS: &str = "triagem_admissions_total";
pub const CALLS: &str = "triagem_calls_total";
pub const WAIT: &str = "triagem_wait_seconds";
pub const BREACHES: &str = "triagem_breaches_total";
pub const LEFT: &str = "triagem_left_total";
pub const ALERTS: &str = "triagem_alerts_total";
pub const DELIVERIES: &str = "triagem_webhook_deliveries_total";
pub const OUTBOX_PENDING: &str = "triagem_webhook_outbox_pending";
pub const COMMIT: &str = "triagem_journal_commit_seconds";
pub const NOTIFICATIONS: &str = "triagem_notifications_total";
pub const NOTIFICATIONS_PENDING: &str = "triagem_notifications_pending";
pub const LEADER: &str = "triagem_leader";
pub const LEADER_TERM: &str = "triagem_leader_term";
pub const HTTP_REQUESTS: &str = "triagem_http_requests_total";
pub const HTTP_DURATION: &str = "triagem_http_request_duration_seconds";
pub const EVENT_STREAMS: &str = "triagem_event_streams";
pub const CONFIG_DIFFERS: &str = "triagem_config_differs";

/// The `colour` label of the triage queue.
pub const UNTRIAGED: &str = "untriaged";
const LEAVE_REASONS: [&str; 4] = ["lwbs", "cancelled", "error", "no_show"];
/// Waits last minutes to hours: buckets from 30 s to 6 h.
const WAIT_BUCKETS: [f64; 14] = [
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 5400.0, 7200.0,
    10800.0, 21600.0,
];
/// Most answers take well under 5 ms (the call-next target) and the
/// default buckets start there, which would hide a p99 drifting towards it.
const HTTP_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// An fsync takes tens of microseconds to tens of milliseconds.
const COMMIT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// An open event stream, counted in `triagem_event_streams` while it lives.
pub struct StreamGuard(IntGauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub struct Metrics {
    registry: Registry,
    waiting: IntGaugeVec,
    oldest: IntGaugeVec,
    admissions: IntCounterVec,
    calls: IntCounterVec,
    wait: HistogramVec,
    breaches: IntCounterVec,
    left: IntCounterVec,
    alerts: IntCounterVec,
    deliveries: IntCounterVec,
    outbox_pending: IntGauge,
    notifications: IntCounterVec,
    notifications_pending: IntGaugeVec,
    commit: Histogram,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    leader: IntGauge,
    leader_term: IntGauge,
    event_streams: IntGauge,
    config_differs: IntGauge,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    // Names are constants defined once above, so a clash is a programming error.
    r.register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

impl Metrics {
    pub fn new(config: &Config) -> Self {
        let r = Registry::new();
        let m = Self {
            waiting: register(&r, IntGaugeVec::new(
                Opts::new(PATIENTS_WAITING, "Patients waiting in a queue, per colour (untriaged: the triage queue)."),
                &["unit", "colour"],
            ).expect("valid metric")),
            oldest: register(&r, IntGaugeVec::new(
                Opts::new(OLDEST_WAIT, "Wait in seconds of the longest-waiting patient of each colour, from arrival."),
                &["unit", "colour"],
            ).expect("valid metric")),
            admissions: register(&r, IntCounterVec::new(
                Opts::new(ADMISSIONS, "Patients admitted."),
                &["unit"],
            ).expect("valid metric")),
            calls: register(&r, IntCounterVec::new(
                Opts::new(CALLS, "Patients called to a room, per queue (recalls not counted)."),
                &["unit", "queue"],
            ).expect("valid metric")),
            wait: register(&r, HistogramVec::new(
                HistogramOpts::new(WAIT, "Wait in seconds from arrival to the call that ended it.")
                    .buckets(WAIT_BUCKETS.to_vec()),
                &["unit", "colour"],
            ).expect("valid metric")),
            breaches: register(&r, IntCounterVec::new(
                Opts::new(BREACHES, "Waits that reached their colour's maximum."),
                &["unit", "colour"],
            ).expect("valid metric")),
            left: register(&r, IntCounterVec::new(
                Opts::new(LEFT, "Patients who left before the end of their visit, per reason (lwbs, cancelled, error, no_show)."),
                &["unit", "reason"],
            ).expect("valid metric")),
            alerts: register(&r, IntCounterVec::new(
                Opts::new(ALERTS, "Escalation alert notifications fired, per kind and level."),
                &["kind", "level"],
            ).expect("valid metric")),
            deliveries: register(&r, IntCounterVec::new(
                Opts::new(DELIVERIES, "Webhook deliveries that ended, per result."),
                &["result"],
            ).expect("valid metric")),
            outbox_pending: register(&r, IntGauge::new(
                OUTBOX_PENDING, "Webhook deliveries waiting to be done (notifications times receivers).",
            ).expect("valid metric")),
            notifications: register(&r, IntCounterVec::new(
                Opts::new(NOTIFICATIONS, "Messages to patients that ended, per channel, event and result."),
                &["channel", "event", "result"],
            ).expect("valid metric")),
            notifications_pending: register(&r, IntGaugeVec::new(
                Opts::new(NOTIFICATIONS_PENDING, "Messages to patients waiting to be sent, per channel."),
                &["channel"],
            ).expect("valid metric")),
            commit: register(&r, Histogram::with_opts(
                HistogramOpts::new(COMMIT, "Duration in seconds of one journal group commit (fsync included).")
                    .buckets(COMMIT_BUCKETS.to_vec()),
            ).expect("valid metric")),
            http_requests: register(&r, IntCounterVec::new(
                Opts::new(HTTP_REQUESTS, "HTTP requests answered, per route pattern and status."),
                &["method", "route", "status"],
            ).expect("valid metric")),
            http_duration: register(&r, HistogramVec::new(
                HistogramOpts::new(HTTP_DURATION, "HTTP request duration in seconds, per route pattern.")
                    .buckets(HTTP_BUCKETS.to_vec()),
                &["method", "route"],
            ).expect("valid metric")),
            leader: register(&r, IntGauge::new(
                LEADER, "1 on the instance that holds the journal's lease (always with SQLite), 0 elsewhere.",
            ).expect("valid metric")),
            leader_term: register(&r, IntGauge::new(
                LEADER_TERM, "The lease's term as this instance last saw it (0 with SQLite).",
            ).expect("valid metric")),
            event_streams: register(&r, IntGauge::new(
                EVENT_STREAMS, "Event streams open (ward screens and pages), all units.",
            ).expect("valid metric")),
            config_differs: register(&r, IntGauge::new(
                CONFIG_DIFFERS, "1 on a follower whose shared settings (units, colours, ladder, tokens, portal, notifications) differ from the leader's; 0 otherwise.",
            ).expect("valid metric")),
            registry: r,
        };
        m.zero(config);
        m
    }

    /// Creates every series whose labels the config determines, at zero.
    fn zero(&self, config: &Config) {
        let mut colours: Vec<&str> = config
            .protocol
            .colours
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        for u in &config.units {
            let unit = u.id.as_str();
            self.admissions.with_label_values(&[unit]);
            for q in [QueueKind::Treatment, QueueKind::Triage] {
                self.calls.with_label_values(&[unit, q.as_str()]);
            }
            for reason in LEAVE_REASONS {
                self.left.with_label_values(&[unit, reason]);
            }
            colours.push(UNTRIAGED);
            for colour in &colours {
                self.waiting.with_label_values(&[unit, colour]);
                self.oldest.with_label_values(&[unit, colour]);
                self.wait.with_label_values(&[unit, colour]);
                self.breaches.with_label_values(&[unit, colour]);
            }
            colours.pop();
        }
        self.alerts.with_label_values(&["warning", "0"]);
        for level in 1..=config.escalation.levels.len().max(1) {
            self.alerts
                .with_label_values(&["breach", &level.to_string()]);
        }
        for result in ["ok", "failed"] {
            self.deliveries.with_label_values(&[result]);
        }
        for channel in config.notifications.channels() {
            self.notifications_pending
                .with_label_values(&[channel.as_str()]);
            for event in NotifyEvent::VARIANTS {
                for result in ["ok", "failed"] {
                    self.notifications.with_label_values(&[
                        channel.as_str(),
                        event.as_str(),
                        result,
                    ]);
                }
            }
        }
    }

    /// Counts what a commit made durable.
    pub fn committed(&self, seconds: f64, changes: &[&Change], receivers: usize) {
        self.commit.observe(seconds);
        for change in changes {
            match change {
                Change::Event(e) => {
                    let colour = e
                        .display
                        .as_ref()
                        .and_then(|d| d.colour.as_deref())
                        .unwrap_or(UNTRIAGED);
                    match e.event.as_str() {
                        "admitted" => self.admissions.with_label_values(&[&e.unit]).inc(),
                        "called" => {
                            let queue = e.details["queue"].as_str().unwrap_or("treatment");
                            self.calls.with_label_values(&[&e.unit, queue]).inc();
                            if let Some(w) = e.details["waited_seconds"].as_i64() {
                                let label = if queue == "triage" { UNTRIAGED } else { colour };
                                self.wait
                                    .with_label_values(&[&e.unit, label])
                                    .observe(w as f64);
                            }
                        }
                        "left" => {
                            let reason = e.details["reason"].as_str().unwrap_or("lwbs");
                            self.left.with_label_values(&[&e.unit, reason]).inc();
                        }
                        _ => {}
                    }
                }
                Change::Notify(n) if n.event == AlertEvent::Firing => {
                    let a = &n.alert;
                    let kind = match a.kind {
                        AlertKind::Warning => "warning",
                        AlertKind::Breach => "breach",
                    };
                    self.alerts
                        .with_label_values(&[kind, &a.level.to_string()])
                        .inc();
                    if a.kind == AlertKind::Breach && a.level == 1 {
                        let colour = a.colour.as_deref().unwrap_or(UNTRIAGED);
                        self.breaches.with_label_values(&[&a.unit, colour]).inc();
                    }
                    self.outbox_pending.add(receivers as i64);
                }
                Change::Notify(_) => self.outbox_pending.add(receivers as i64),
                Change::Message(m) => self
                    .notifications_pending
                    .with_label_values(&[m.channel.as_str()])
                    .inc(),
                Change::Delivery {
                    outbox, outcome, ..
                } => {
                    let result = match outcome {
                        DeliveryOutcome::Delivered => "ok",
                        DeliveryOutcome::Failed => "failed",
                        DeliveryOutcome::Pending => continue,
                    };
                    match outbox {
                        Outbox::Webhook => {
                            self.deliveries.with_label_values(&[result]).inc();
                            self.outbox_pending.dec();
                        }
                        Outbox::Message { channel, event } => {
                            let channel = channel.as_str();
                            self.notifications
                                .with_label_values(&[channel, event.as_str(), result])
                                .inc();
                            self.notifications_pending
                                .with_label_values(&[channel])
                                .dec();
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub fn set_role(&self, leader: bool, term: u64, config_differs: bool) {
        self.leader.set(i64::from(leader));
        self.leader_term.set(term as i64);
        self.config_differs.set(i64::from(config_differs));
    }

    /// Counts an event stream as open until the guard is dropped.
    pub fn event_stream_opened(&self) -> StreamGuard {
        self.event_streams.inc();
        StreamGuard(self.event_streams.clone())
    }

    pub fn set_outbox_pending(&self, n: u64) {
        self.outbox_pending.set(n as i64);
    }

    #[cfg(test)]
    pub fn notifications_pending(&self, channel: Channel) -> i64 {
        self.notifications_pending
            .with_label_values(&[channel.as_str()])
            .get()
    }

    pub fn set_notifications_pending(&self, channel: Channel, n: u64) {
        self.notifications_pending
            .with_label_values(&[channel.as_str()])
            .set(n as i64);
    }

    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The text exposition, with the queue gauges set from `gauges`. An
    /// instance that does not lead exports zero waiting: its memory is from
    /// its last term (the leader's is the department's), so sums across the
    /// two instances and the alert rules read the leader alone (a follower
    /// paged "red patient not called" for one called minutes before).
    pub fn render(&self, gauges: &QueueGauges, leading: bool) -> String {
        for g in &gauges.0 {
            let label = g.colour.as_deref().unwrap_or(UNTRIAGED);
            let (waiting, oldest) = if leading {
                (g.waiting as i64, g.oldest_seconds)
            } else {
                (0, 0)
            };
            self.waiting
                .with_label_values(&[&g.unit, label])
                .set(waiting);
            self.oldest.with_label_values(&[&g.unit, label]).set(oldest);
        }
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// How many wait and the longest wait, per unit and queue, as read at one moment.
pub struct QueueGauges(Vec<QueueGauge>);

struct QueueGauge {
    unit: UnitId,
    /// `None` for the triage queue.
    colour: Option<ColourId>,
    waiting: usize,
    oldest_seconds: i64,
}

impl QueueGauges {
    /// Reads the gauges from the department: a few numbers per unit and colour,
    /// so it is cheap to do under the department lock.
    pub fn read(dept: &Department, now: chrono::DateTime<chrono::Utc>) -> Self {
        let mut out = Vec::new();
        for unit in dept.units() {
            let id = &unit.settings.id;
            for (colour, waiting, oldest_seconds) in dept.queue_gauges(id, now) {
                out.push(QueueGauge {
                    unit: id.clone(),
                    colour,
                    waiting,
                    oldest_seconds,
                });
            }
        }
        Self(out)
    }
}
