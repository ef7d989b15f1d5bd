use crate::domain::ids::{colour_id, unit_id};
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::clock::ManualClock;
use crate::domain::patient::QueueKind;
use crate::domain::Admission;

fn admission(name: &str) -> Admission {
    Admission {
        contact: None,
        name: name.into(),
        colour: Some(colour_id("green")),
        complaint: None,
        arrived_at: None,
        birth_date: None,
        document: None,
    }
}

/// A recovered service on a fresh journal; keep the directory alive.
fn service() -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(include_str!("../../config/default.toml")).unwrap();
    config.storage.data_dir = dir.path().to_owned();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap());
    let service = Service::new(Arc::new(config), Arc::new(clock));
    service.recover().unwrap();
    (service, dir)
}

async fn admit(service: &Service, name: &str) -> Result<String, ServiceError> {
    let admitted = service
        .execute(|d, now| d.admit(&unit_id("pa"), admission(name), None, "desk", now))
        .await?;
    Ok(admitted.protocol.to_string())
}

/// Rebuilds memory from the journal, on a blocking thread as the recovery task does.
async fn reload(service: &Service) {
    let s = service.clone();
    tokio::task::spawn_blocking(move || s.reload())
        .await
        .unwrap()
        .unwrap();
}

fn waiting(service: &Service) -> Result<usize, ServiceError> {
    service.read(|d, _| d.waiting("pa", QueueKind::Treatment))
}

#[tokio::test]
async fn a_command_that_panics_halfway_leaves_nothing_of_it_on_view() {
    let (service, _dir) = service();
    assert_eq!(admit(&service, "Ana").await.unwrap(), "20260000000000001");

    // A fault between two mutations: the admission is in memory, not in the journal.
    let panicked = service
        .execute(|d, now| -> Result<Applied<()>, DomainError> {
            d.admit(&unit_id("pa"), admission("Bia"), None, "desk", now)?;
            panic!("injected fault");
        })
        .await;
    assert!(matches!(panicked, Err(ServiceError::Unavailable)));
    assert!(!service.is_ready());
    assert!(
        matches!(waiting(&service), Err(ServiceError::Unavailable)),
        "the half-applied memory is not served"
    );
    assert!(matches!(
        admit(&service, "Caio").await,
        Err(ServiceError::Unavailable)
    ));

    reload(&service).await;
    assert!(service.is_ready());
    assert_eq!(
        waiting(&service).unwrap(),
        1,
        "only Ana, as the journal has it"
    );
    assert_eq!(
        admit(&service, "Caio").await.unwrap(),
        "20260000000000002",
        "the number the panicked command took is issued, not skipped"
    );
}

/// A commit that failed after its only caller had gone (a client that hung
/// up): the next request finds the journal refusing and starts the recovery,
/// which nothing else would have started.
#[tokio::test]
async fn a_failed_commit_nobody_waited_on_still_starts_the_recovery() {
    let (service, _dir) = service();
    admit(&service, "Ana").await.unwrap();
    let journal = service.journal().unwrap();
    journal.inject_commit_failures(true);
    // The writer held on a reload, so the commit waits behind it.
    journal.pause_reloads(true);
    let held = tokio::task::spawn_blocking({
        let s = service.clone();
        move || s.journal().unwrap().reload().map(|_| ())
    });
    while journal.paused_reloads() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Polled once (memory changed, the commit submitted), then dropped.
    let gone = futures_util::FutureExt::now_or_never(admit(&service, "Bia"));
    assert!(
        gone.is_none(),
        "dropped while its commit was under way: {gone:?}"
    );
    journal.pause_reloads(false);
    assert!(held.await.unwrap().is_err(), "failures injected");
    while journal.is_healthy() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(service.is_serving(), "nobody has told the service yet");
    assert!(matches!(waiting(&service), Err(ServiceError::Unavailable)));
    assert!(!service.is_serving());
    tokio::time::timeout(Duration::from_secs(1), service.failed())
        .await
        .expect("the recovery task is woken");
    journal.inject_commit_failures(false);
    reload(&service).await;
    assert_eq!(
        waiting(&service).unwrap(),
        1,
        "only Ana, as the journal has it"
    );
}

#[tokio::test]
async fn a_reload_while_ready_changes_nothing() {
    let (service, _dir) = service();
    admit(&service, "Ana").await.unwrap();
    service.reload().unwrap();
    assert_eq!(waiting(&service).unwrap(), 1);
}

#[tokio::test]
async fn a_purge_recounts_the_pending_messages_it_took_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::from_toml(include_str!("../../config/default.toml")).unwrap();
    config.storage.data_dir = dir.path().to_owned();
    // A gateway nobody answers: no delivery task runs here anyway.
    config.notifications =
        toml::from_str("[sms]\nurl = \"http://127.0.0.1:9/sms\"\nsecret = \"s\"\n").unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
    ));
    let service = Service::new(Arc::new(config), clock.clone());
    service.recover().unwrap();
    let pending = || service.metrics().notifications_pending(Channel::Sms);

    let mut with_phone = admission("Maria");
    with_phone.contact = Some(crate::domain::patient::Contact {
        phone: Some("+5511987654321".into()),
        email: None,
        consent: true,
    });
    let admitted = service
        .execute(|d, now| d.admit(&unit_id("pa"), with_phone, None, "desk", now))
        .await
        .unwrap();
    assert_eq!(pending(), 1, "the admission's SMS is queued");
    service
        .execute(|d, now| {
            d.leave(
                admitted.protocol,
                crate::domain::patient::LeaveReason::Lwbs,
                "desk",
                now,
            )
        })
        .await
        .unwrap();

    clock.advance(chrono::TimeDelta::days(89));
    assert_eq!(service.purge().await.unwrap(), 0);
    assert_eq!(pending(), 1);
    clock.advance(chrono::TimeDelta::days(2));
    assert_eq!(service.purge().await.unwrap(), 1);
    assert_eq!(
        pending(),
        0,
        "the purged patient's unsent SMS is no longer counted"
    );
}
