use crate::domain::ids::{colour_id, unit_id};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use super::*;
use crate::config::Config;
use crate::domain::patient::QueueKind;
use crate::domain::{Admission, Department, PatientBatch};
use rusqlite::Connection;
use sqlite::FEED_BATCH;

fn config() -> Config {
    Config::from_toml(include_str!("../../config/default.toml")).unwrap()
}

fn admission(name: &str, colour: Option<&str>) -> Admission {
    Admission {
        contact: None,
        name: name.into(),
        colour: colour.map(colour_id),
        complaint: Some("dor".into()),
        arrived_at: None,
        birth_date: None,
        document: None,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

#[test]
fn committed_changes_come_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    // The same check codes before and after, whatever the journal's own secret.
    c.portal.secret = Some("a test secret".into());
    let mut d = Department::new(&c.department_settings());
    {
        let (journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        assert!(snapshot.patients.into_vec().unwrap().is_empty());
        for (i, colour) in [Some("green"), None, Some("red")].into_iter().enumerate() {
            let key = format!("key-{i}");
            let applied = d
                .admit(
                    &unit_id("pa"),
                    admission("Ana", colour),
                    Some(&key),
                    "desk",
                    now(),
                )
                .unwrap();
            journal.submit(applied.changes).wait_blocking().unwrap();
        }
        let applied = d
            .call(
                "pa",
                QueueKind::Treatment,
                "Consultório 1",
                None,
                "doc",
                now(),
            )
            .unwrap();
        journal.submit(applied.changes).wait_blocking().unwrap();
    }
    let (journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let r = Department::restore(&c.department_settings(), snapshot).unwrap();
    assert_eq!(r.patient_count(), 3);
    // One journal per directory at a time: this one closes before the next.
    drop(journal);
    let (_journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(snapshot.idempotency.len(), 3);
    assert_eq!(snapshot.calls.len(), 1);
    assert_eq!(snapshot.sequence.unwrap().last, 3);
    // What the wait estimates replay, oldest first (the uncoloured admission
    // tells them nothing).
    let recent: Vec<(&str, RecentFact)> = snapshot
        .recent
        .iter()
        .map(|(unit, _, fact)| (unit.as_str(), fact.clone()))
        .collect();
    let entered = |c| RecentFact::Entered {
        colour: colour_id(c),
    };
    let called = RecentFact::Called {
        queue: QueueKind::Treatment,
        colour: Some(colour_id("red")),
    };
    assert_eq!(
        recent,
        [
            ("pa", entered("green")),
            ("pa", entered("red")),
            ("pa", called)
        ]
    );
    let r = Department::restore(&c.department_settings(), snapshot).unwrap();
    assert_eq!(
        r.queue_page("pa", QueueKind::Treatment, 0, 10, now())
            .unwrap(),
        d.queue_page("pa", QueueKind::Treatment, 0, 10, now())
            .unwrap()
    );
    assert_eq!(r.board("pa", now()).unwrap(), d.board("pa", now()).unwrap());
}

#[test]
fn concurrent_commands_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let counter = commits.clone();
    let observer: CommitObserver = Box::new(move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let options = JournalOptions {
        receivers: 0,
        observer: Some(observer),
        announcer: None,
    };
    let (journal, _) = Journal::open(dir.path(), options).unwrap();
    let mut d = Department::new(&config().department_settings());
    let pending: Vec<_> = (0..500)
        .map(|_| {
            let applied = d
                .admit(
                    &unit_id("pa"),
                    admission("Ana", Some("green")),
                    None,
                    "desk",
                    now(),
                )
                .unwrap();
            journal.submit(applied.changes)
        })
        .collect();
    for p in pending {
        p.wait_blocking().unwrap();
    }
    let n = commits.load(Ordering::Relaxed);
    assert!(n < 500, "500 commands took {n} commits");
    drop(journal);
    let (_j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(snapshot.patients.into_vec().unwrap().len(), 500);
}

/// The writer's own checkpoint waits for 1 000 WAL pages and stalls the
/// commit that reaches them; the background one copies the WAL into the
/// database well before, while the writer goes on committing.
#[test]
fn the_wal_is_copied_into_the_database_beside_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(sqlite::DB_FILE);
    let wal = dir.path().join(format!("{}-wal", sqlite::DB_FILE));
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let before = std::fs::metadata(&db).unwrap().len();
    let mut d = Department::new(&config().department_settings());
    for i in 0..40 {
        let name = format!("Paciente {i} {}", "x".repeat(180));
        let applied = d
            .admit(&unit_id("pa"), admission(&name, None), None, "desk", now())
            .unwrap();
        journal.submit(applied.changes).wait_blocking().unwrap();
    }
    let wal_pages = std::fs::metadata(&wal).unwrap().len() / 4096;
    assert!(
        wal_pages < 1000,
        "{wal_pages} WAL pages: the writer's own checkpoint would have run"
    );
    // The checkpoint runs on its own thread: wait for it; the 10 s bound only
    // keeps a missing checkpoint from hanging the test.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&db).unwrap().len() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {before} bytes after 40 commits"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(journal);
    let (_journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(snapshot.patients.into_vec().unwrap().len(), 40);
}

#[test]
fn after_a_failed_commit_nothing_is_written_until_a_reload_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let c = config();
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let mut d = Department::new(&c.department_settings());
    let ok = d
        .admit(&unit_id("pa"), admission("A", None), None, "desk", now())
        .unwrap();
    journal.submit(ok.changes).wait_blocking().unwrap();

    journal.inject_commit_failures(true);
    let lost = d
        .admit(&unit_id("pa"), admission("B", None), None, "desk", now())
        .unwrap();
    assert!(matches!(
        journal.submit(lost.changes).wait_blocking(),
        Err(JournalError::Unavailable)
    ));
    assert!(!journal.is_healthy());
    assert!(journal.reload().is_err(), "the disk is still failing");
    journal.inject_commit_failures(false);
    // Still refused: the writer waits for a reload before writing again.
    let refused = d
        .admit(&unit_id("pa"), admission("C", None), None, "desk", now())
        .unwrap();
    assert!(journal.submit(refused.changes).wait_blocking().is_err());

    let mut snapshot = journal.reload().unwrap();
    assert!(journal.is_healthy());
    let patients = std::mem::take(&mut snapshot.patients).into_vec().unwrap();
    assert_eq!(patients.len(), 1);
    snapshot.patients = patients.into_iter().collect();
    let mut d = Department::restore(&c.department_settings(), snapshot).unwrap();
    let next = d
        .admit(&unit_id("pa"), admission("D", None), None, "desk", now())
        .unwrap();
    assert_eq!(
        next.value.protocol.to_string(),
        "20260000000000002",
        "no number skipped"
    );
    journal.submit(next.changes).wait_blocking().unwrap();
}

#[test]
fn history_lists_a_patients_events_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let mut d = Department::new(&config().department_settings());
    let a = d
        .admit(&unit_id("pa"), admission("A", None), None, "desk", now())
        .unwrap();
    let protocol = a.value.protocol;
    journal.submit(a.changes).wait_blocking().unwrap();
    let t = d
        .triage(protocol, &colour_id("yellow"), None, "nurse", now())
        .unwrap();
    journal.submit(t.changes).wait_blocking().unwrap();
    let h = journal.history(protocol).unwrap();
    let got: Vec<(&str, &str)> = h
        .iter()
        .map(|e| (e.event.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(got, vec![("admitted", "desk"), ("triaged", "nurse")]);
    assert_eq!(h[1].details["colour"], "yellow");
}

/// One process per data directory: a second journal opened on it is refused
/// while the first is open (two servers gave protocol numbers twice), and
/// taken once it is closed.
#[test]
fn a_data_directory_serves_one_journal_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    match Journal::open(dir.path(), JournalOptions::default()) {
        Err(JournalError::InUse(path)) => assert_eq!(path, dir.path()),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a second journal opened on a directory in use"),
    }
    drop(first);
    Journal::open(dir.path(), JournalOptions::default()).unwrap();
}

#[test]
fn purge_removes_patients_and_their_history() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let mut d = Department::new(&config().department_settings());
    let a = d
        .admit(
            &unit_id("pa"),
            admission("Zuleica Purgada Daqui", Some("blue")),
            None,
            "desk",
            now(),
        )
        .unwrap();
    let protocol = a.value.protocol;
    journal.submit(a.changes).wait_blocking().unwrap();
    {
        // Webhook notifications of an alert no longer kept: one sent after
        // an earlier purge (it was pending then), one still pending.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "INSERT INTO outbox(receiver, alert_id, event, alert, state, created_at)
                 VALUES (0, 999, 'alert.firing', '{}', 'delivered', 0),
                        (0, 999, 'alert.resolved', '{}', 'pending', 0);",
        )
        .unwrap();
    }
    let l = d
        .leave(
            protocol,
            crate::domain::patient::LeaveReason::Lwbs,
            "desk",
            now(),
        )
        .unwrap();
    journal.submit(l.changes).wait_blocking().unwrap();
    let purge = d.purge(now() + chrono::TimeDelta::days(91));
    journal.submit(purge.changes).wait_blocking().unwrap();
    assert!(journal.history(protocol).unwrap().is_empty());
    let states: Vec<String> = Connection::open(dir.path().join(DB_FILE))
        .unwrap()
        .prepare("SELECT state FROM outbox WHERE alert_id = 999")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        states,
        ["pending"],
        "the sent one goes, the pending one waits"
    );
    drop(journal);
    // Gone means gone from the file too: the name is not left in free space.
    let file = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let name = b"Zuleica Purgada Daqui";
    assert!(
        !file.windows(name.len()).any(|w| w == name),
        "the purged name is still in the database file"
    );
    let (_j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert!(snapshot.patients.into_vec().unwrap().is_empty());
    assert_eq!(
        snapshot.sequence.unwrap().last,
        1,
        "the sequence survives a purge"
    );
}

#[test]
fn a_journal_of_the_first_schema_gets_the_search_columns_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Department::new(&config().department_settings());
    {
        let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        let a = d
            .admit(
                &unit_id("pa"),
                admission("José Conceição", None),
                None,
                "desk",
                now(),
            )
            .unwrap();
        journal.submit(a.changes).wait_blocking().unwrap();
    }
    {
        // As a journal written before the search columns existed.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "UPDATE patients SET name_key = NULL, document_key = NULL, ticket = NULL,
                 arrived_at = NULL, admitted_at = NULL;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let (journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let patients = snapshot.patients.into_vec().unwrap();
    assert_eq!(patients.len(), 1);
    let search = |q: &str| {
        journal
            .search(&PatientSearch {
                q: Some(q.into()),
                limit: 10,
                ..PatientSearch::default()
            })
            .unwrap()
    };
    assert_eq!(search("jose conceicao"), [patients[0].protocol]);
    assert_eq!(search("A001"), [patients[0].protocol]);
}

#[test]
fn patients_come_back_in_protocol_order_across_feed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let n = FEED_BATCH * 2 + 7;
    {
        let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        let pending: Vec<_> = (0..n)
            .map(|i| {
                let applied = d
                    .admit(
                        &unit_id("pa"),
                        admission(&format!("P {i}"), Some("green")),
                        None,
                        "desk",
                        now(),
                    )
                    .unwrap();
                journal.submit(applied.changes)
            })
            .collect();
        pending.into_iter().for_each(|p| p.wait_blocking().unwrap());
    }
    let (_j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let batches: Vec<PatientBatch> = snapshot.patients.batches().map(Result::unwrap).collect();
    assert_eq!(batches.len(), 3, "two full batches and the rest");
    let protocols: Vec<Protocol> = batches.concat().iter().map(|p| p.protocol).collect();
    assert_eq!(protocols.len(), n);
    assert!(protocols.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_record_that_cannot_be_read_stops_the_rebuild_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = config();
    let mut d = Department::new(&c.department_settings());
    {
        let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        for name in ["A", "B"] {
            let applied = d
                .admit(&unit_id("pa"), admission(name, None), None, "desk", now())
                .unwrap();
            journal.submit(applied.changes).wait_blocking().unwrap();
        }
    }
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute(
            "UPDATE patients SET body = '{\"protocol\": 1' WHERE protocol = (SELECT MAX(protocol) FROM patients)",
            [],
        )
        .unwrap();
    }
    let (_j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let err = Department::restore(&c.department_settings(), snapshot).unwrap_err();
    assert!(
        err.to_string().contains("patient"),
        "names what it could not read: {err}"
    );
}

#[test]
fn a_patient_of_a_unit_no_longer_configured_stops_the_rebuild_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let protocol = {
        let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
        let applied = d
            .admit(&unit_id("pa"), admission("A", None), None, "desk", now())
            .unwrap();
        journal.submit(applied.changes).wait_blocking().unwrap();
        applied.value.protocol
    };
    // The same site restarted with its only unit renamed.
    let mut renamed = config();
    renamed.units[0].id = unit_id("uti");
    let (j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let err = Department::restore(&renamed.department_settings(), snapshot).unwrap_err();
    drop(j);
    let text = err.to_string();
    assert!(
        text.contains(&protocol.to_string()) && text.contains("`pa`"),
        "names the patient and the unit: {text}"
    );
    // With the unit back, the same journal restores.
    let (_j, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    let d = Department::restore(&c.department_settings(), snapshot).unwrap();
    assert!(d.patient(protocol).is_ok());
}

// ---- files that are not a whole Triagem journal: refused, never written to

/// Opening must fail; the error as the operator reads it.
fn refusal(dir: &Path) -> String {
    match Journal::open(dir, JournalOptions::default()) {
        Ok(_) => panic!("the journal was opened"),
        Err(e) => e.to_string(),
    }
}

/// A journal of `n` admissions, closed cleanly (its write-ahead log checkpointed).
fn written_journal(dir: &Path, n: usize) {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let (journal, _) = Journal::open(dir, JournalOptions::default()).unwrap();
    for i in 0..n {
        let applied = d
            .admit(
                &unit_id("pa"),
                admission(&format!("Paciente {i}"), Some("green")),
                None,
                "desk",
                now(),
            )
            .unwrap();
        journal.submit(applied.changes).wait_blocking().unwrap();
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(&path, "protocolo;nome\n".repeat(500)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("is not a Triagem journal"), "{e}");
    assert!(e.contains("not an SQLite database"), "{e}");
    assert!(
        e.contains(&path.display().to_string()),
        "names the file: {e}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn another_programs_database_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
             INSERT INTO users (name) VALUES ('ana');",
        )
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("is not a Triagem journal"), "{e}");
    assert!(e.contains("tables: users"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn an_empty_journal_file_is_refused_not_started_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    std::fs::write(&path, b"").unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("it is empty"), "{e}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// Cuts the file at `path` to `len` bytes, as a copy cut short would.
fn cut_to(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

#[test]
fn a_truncated_journal_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    written_journal(dir.path(), 200);
    let path = dir.path().join(DB_FILE);
    let len = std::fs::metadata(&path).unwrap().len();
    cut_to(&path, len / 2);
    let before = std::fs::read(&path).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("it is truncated"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// The files a `kill -9` during a checkpoint leaves, in a directory of their
/// own, of a journal of 200 admissions that was `before` bytes: the log holds
/// every page written since, and the checkpoint had copied the first page
/// (whose header gives the new size) but not the end.
fn checkpoint_cut_short() -> (tempfile::TempDir, u64) {
    let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (from_dir.path(), to_dir.path());
    written_journal(from, 200);
    let before = std::fs::metadata(from.join(DB_FILE)).unwrap().len();
    let conn = Connection::open(from.join(DB_FILE)).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    // Pages the journal grows by and then frees, all in the log.
    conn.execute_batch(
        "CREATE TABLE padding(x);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
         INSERT INTO padding SELECT randomblob(1000) FROM n;
         DROP TABLE padding;",
    )
    .unwrap();
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .unwrap();
    // Copied while the connection is open: closing it would empty the log.
    for suffix in ["", "-wal"] {
        let name = format!("{DB_FILE}{suffix}");
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
    drop(conn);
    let db = to.join(DB_FILE);
    assert!(std::fs::metadata(&db).unwrap().len() > before + 400_000);
    cut_to(&db, before);
    (to_dir, before)
}

#[test]
fn a_checkpoint_cut_short_by_a_crash_is_opened_with_every_patient() {
    let (to, _) = checkpoint_cut_short();
    let (_journal, snapshot) = Journal::open(to.path(), JournalOptions::default()).unwrap();
    let d = Department::restore(&config().department_settings(), snapshot).unwrap();
    assert_eq!(d.patient_count(), 200);
}

#[test]
fn a_journal_cut_short_is_refused_when_its_log_lacks_the_missing_pages() {
    for without_log in [false, true] {
        let (to, before) = checkpoint_cut_short();
        let db = to.path().join(DB_FILE);
        if without_log {
            std::fs::remove_file(to.path().join(format!("{DB_FILE}-wal"))).unwrap();
        } else {
            // Shorter still: pages the log never held are gone.
            cut_to(&db, before / 2 / 4096 * 4096);
        }
        let bytes = std::fs::read(&db).unwrap();
        let e = refusal(to.path());
        assert!(
            e.contains("it is truncated"),
            "without log {without_log}: {e}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), bytes);
    }
}

#[test]
fn a_journal_cut_short_is_refused_beside_another_databases_log() {
    let (to, _) = checkpoint_cut_short();
    // A log that holds every page number the journal lacks, but of a database
    // with 8 KiB pages: nothing SQLite writes beside a journal of 4 KiB pages.
    let other = tempfile::tempdir().unwrap();
    let conn = Connection::open(other.path().join("other.db")).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE t(x);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO t SELECT randomblob(1000) FROM n;",
    )
    .unwrap();
    let wal = to.path().join(format!("{DB_FILE}-wal"));
    std::fs::copy(other.path().join("other.db-wal"), &wal).unwrap();
    drop(conn);
    let db = to.path().join(DB_FILE);
    let (bytes, log) = (std::fs::read(&db).unwrap(), std::fs::read(&wal).unwrap());
    let e = refusal(to.path());
    assert!(e.contains("it is truncated"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), bytes);
    assert_eq!(std::fs::read(&wal).unwrap(), log);
}

#[test]
fn a_journal_damaged_inside_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    written_journal(dir.path(), 200);
    let path = dir.path().join(DB_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    // Every page but the first (the header and the list of tables) overwritten.
    bytes[page..].fill(0x5a);
    std::fs::write(&path, &bytes).unwrap();
    let e = refusal(dir.path());
    assert!(e.contains("the journal is damaged"), "{e}");
    assert!(e.contains("restore it from a backup"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_journal_from_before_the_application_id_is_still_opened_and_then_marked() {
    let dir = tempfile::tempdir().unwrap();
    written_journal(dir.path(), 3);
    let path = dir.path().join(DB_FILE);
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "application_id", 0)
        .unwrap();
    let (journal, snapshot) = Journal::open(dir.path(), JournalOptions::default()).unwrap();
    assert_eq!(snapshot.patients.into_vec().unwrap().len(), 3);
    drop(journal);
    let id: i32 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(id, sqlite::schema::APPLICATION_ID);
}

/// The writer's priority is its own thread's: raising it leaves the thread
/// that started the journal (an HTTP worker, say) where it was.
#[cfg(target_os = "linux")]
#[test]
fn raising_the_writer_priority_touches_only_its_thread() {
    use rustix::process::getpriority_process;
    use rustix::thread::gettid;
    let nice = |tid| getpriority_process(Some(tid)).unwrap();
    let here = nice(gettid());
    let (raised, theirs, before) = std::thread::spawn(move || {
        let before = nice(gettid());
        let raised = raise_priority("test");
        (raised, nice(gettid()), before)
    })
    .join()
    .unwrap();
    if raised {
        assert_eq!(theirs, WRITER_NICE);
    } else {
        // Not allowed here (no CAP_SYS_NICE): the thread runs on unchanged.
        assert_eq!(theirs, before);
    }
    assert_eq!(nice(gettid()), here);
}

#[test]
fn a_recent_event_reads_the_same_whether_its_details_borrow_or_not() {
    let called = |queue, colour: Option<&str>| {
        Some(RecentFact::Called {
            queue,
            colour: colour.map(colour_id),
        })
    };
    let entered = |colour| {
        Some(RecentFact::Entered {
            colour: colour_id(colour),
        })
    };
    let cases = [
        (
            "admitted",
            r#"{"ticket":"A1","colour":"green","arrived_at":"x"}"#,
            entered("green"),
        ),
        // Escaped text cannot be borrowed: read through the lenient path.
        ("triaged", r#"{"colour":"gr\u0065en"}"#, entered("green")),
        ("admitted", r#"{"ticket":"A1"}"#, None),
        ("admitted", r#"{"colour":5}"#, None),
        ("admitted", r#"{"colour":"Not An Id"}"#, None),
        (
            "called",
            r#"{"queue":"triage","colour":"red"}"#,
            called(QueueKind::Triage, Some("red")),
        ),
        (
            "called",
            r#"{"queue":"triage"}"#,
            called(QueueKind::Triage, None),
        ),
        (
            "called",
            r#"{"colour":"red"}"#,
            called(QueueKind::Treatment, Some("red")),
        ),
        (
            "called",
            r#"{"queue":"elsewhere","colour":"red"}"#,
            called(QueueKind::Treatment, Some("red")),
        ),
        (
            "called",
            r#"{"queue":7,"colour":"red"}"#,
            called(QueueKind::Treatment, Some("red")),
        ),
    ];
    for (event, details, want) in cases {
        assert_eq!(
            recent_fact(event, details).unwrap(),
            want,
            "{event} {details}"
        );
    }
    assert!(recent_fact("admitted", "not json").is_err());
}

#[test]
fn the_writer_takes_every_command_sent_and_stops_when_the_senders_are_gone() {
    let (tx, rx) = mpsc::channel();
    tx.send(Msg::InjectFailure(true)).unwrap();
    assert!(matches!(receive(&rx, None), Some(Msg::InjectFailure(true))));
    // Nothing waiting and the linger already over: it returns at once.
    assert!(receive(&rx, Some(Instant::now())).is_none());
    // Sent from another thread while it looks or sleeps: taken.
    let sender = std::thread::spawn(move || {
        tx.send(Msg::InjectFailure(false)).unwrap();
        tx
    });
    assert!(matches!(
        receive(&rx, None),
        Some(Msg::InjectFailure(false))
    ));
    drop(sender.join().unwrap());
    // Every sender gone: the writer ends instead of sleeping for ever.
    assert!(receive(&rx, None).is_none());
}
