use crate::domain::ids::{colour_id, unit_id};
use std::sync::Arc;

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

    tokio::task::spawn_blocking({
        let s = service.clone();
        move || s.reload()
    })
    .await
    .unwrap()
    .unwrap();
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

#[tokio::test]
async fn a_reload_while_ready_changes_nothing() {
    let (service, _dir) = service();
    admit(&service, "Ana").await.unwrap();
    service.reload().unwrap();
    assert_eq!(waiting(&service).unwrap(), 1);
}
