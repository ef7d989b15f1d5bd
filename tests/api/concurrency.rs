//! Many admissions at once: numbers and tickets stay unique and consecutive.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::{sequence, TestApp, UNIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_twenty_concurrent_admissions_get_distinct_consecutive_numbers_and_tickets() {
    const N: usize = 320;
    let app = TestApp::spawn().await;
    let colours = [
        Some("red"),
        Some("yellow"),
        Some("green"),
        Some("blue"),
        None,
    ];
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let client = app.client.clone();
        let url = app.url(&format!("/units/{UNIT}/patients"));
        let body = json!({"name": format!("Paciente {i}"), "colour": colours[i % colours.len()]});
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.expect("POST");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("JSON");
            (status, v)
        }));
    }
    let mut protocols = HashSet::new();
    let mut tickets = HashSet::new();
    let mut sequences = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 201, "{v}");
        let p = v["protocol"].as_str().unwrap().to_owned();
        assert!(p.starts_with("2026"));
        sequences.push(sequence(&p));
        protocols.insert(p);
        tickets.insert(v["ticket"].as_str().unwrap().to_owned());
    }
    assert_eq!(protocols.len(), N, "distinct protocol numbers");
    assert_eq!(tickets.len(), N, "distinct tickets");
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (1..=N as u64).collect::<Vec<_>>(),
        "consecutive from 1"
    );
    let expected_tickets: HashSet<String> = (1..=N).map(|n| format!("A{n:03}")).collect();
    assert_eq!(tickets, expected_tickets);
    assert_eq!(
        app.total("treatment").await + app.total("triage").await,
        N as u64
    );
    assert_eq!(app.total("triage").await, (N / colours.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_widen_to_four_digits_after_a999_instead_of_wrapping() {
    const N: usize = 1000;
    const DESKS: usize = 50;
    let app = TestApp::spawn().await;
    let mut desks = Vec::new();
    for d in 0..DESKS {
        let client = app.client.clone();
        let url = app.url(&format!("/units/{UNIT}/patients"));
        desks.push(tokio::spawn(async move {
            let mut tickets = Vec::new();
            for i in 0..N / DESKS {
                let r = client
                    .post(&url)
                    .json(&json!({"name": format!("D{d} P{i}")}))
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(r.status().as_u16(), 201);
                let v: Value = r.json().await.expect("JSON");
                tickets.push(v["ticket"].as_str().unwrap().to_owned());
            }
            tickets
        }));
    }
    let mut tickets = HashSet::new();
    for d in desks {
        tickets.extend(d.await.unwrap());
    }
    let expected: HashSet<String> = (1..=N).map(|n| format!("A{n:03}")).collect();
    assert_eq!(tickets, expected);
    assert!(tickets.contains("A999") && tickets.contains("A1000"));
    assert_eq!(app.admit("next", None).await["ticket"], "A1001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_never_call_the_same_patient_twice() {
    let app = TestApp::spawn().await;
    let mut admitted = HashSet::new();
    for i in 0..10 {
        let colour = ["red", "yellow", "green"][i % 3];
        admitted.insert(
            app.admit(&format!("P{i}"), Some(colour)).await["protocol"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..25 {
        let client = app.client.clone();
        let url = app.url(&format!("/units/{UNIT}/call"));
        let room = if i % 2 == 0 {
            "Consultório 1"
        } else {
            "Consultório 2"
        };
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"room": room}))
                .send()
                .await
                .expect("POST");
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }));
    }
    let mut called = HashSet::new();
    let mut empty = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, text) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert!(called.insert(v["protocol"].as_str().unwrap().to_owned()));
            }
            (204, _) => empty += 1,
            (s, text) => panic!("call gave {s}: {text}"),
        }
    }
    assert_eq!(called, admitted, "each patient called exactly once");
    assert_eq!(empty, 15);
    assert_eq!(app.total("treatment").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_finishes_of_one_patient_succeed_exactly_once() {
    let app = TestApp::spawn().await;
    let p = app.admit("Ana", Some("red")).await["protocol"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call("Consultório 1").await.expect(200);
    let mut tasks = Vec::new();
    for outcome in ["discharged", "admitted", "transferred", "deceased"].repeat(3) {
        let client = app.client.clone();
        let url = app.url(&format!("/patients/{p}/finish"));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"outcome": outcome}))
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), outcome)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (200, outcome) => winners.push(outcome),
            (409, _) => {}
            (s, _) => panic!("finish gave {s}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let v = app.patient(&p).await;
    assert_eq!(v["outcome"], winners[0]);
    let finished = app
        .care_history(&p)
        .await
        .iter()
        .filter(|e| e["event"] == "finished")
        .count();
    assert_eq!(finished, 1);
}
