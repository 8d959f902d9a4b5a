//! The Prometheus endpoint (cargo feature `metrics`), scraped over HTTP after a known workload
//! on real sockets: each count is the workload's, and no label holds a client's text.

#![allow(clippy::unwrap_used)]

mod common;
#[cfg(feature = "redis")]
#[path = "../../storex-bench/src/services.rs"]
#[allow(dead_code)]
mod services;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use common::stores::Counter;
use common::{eventually, http_get_text, Client, PATIENCE};
use serde_json::{json, Value};
use storex::metrics::Metrics;
use storex::Config;

const COUNTER: &str = "Test.Counter";

/// A server with the storex scope and the metrics route; its address.
fn start(config: Config, metrics: Metrics) -> std::net::SocketAddr {
    let server = HttpServer::new(move || {
        App::new()
            .service(storex::actix::scope(config.clone()))
            .route("/metrics", storex::actix::metrics(metrics.clone()))
    })
    .workers(2)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    actix_rt::spawn(server.run());
    addr
}

/// The scraped text.
async fn scrape(addr: std::net::SocketAddr) -> String {
    let (status, text) = http_get_text(&format!("http://{addr}/metrics"), &[]).await;
    assert_eq!(status, 200, "{text}");
    text
}

/// The value of the sample `series` (name and labels as written), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn mutations(outcome: &str, source: &str) -> String {
    format!(r#"storex_mutations_total{{store="{COUNTER}",source="{source}",outcome="{outcome}"}}"#)
}

/// Scrapes until `series` has `value` (some counts land just after the frame that shows them).
async fn until(addr: std::net::SocketAddr, series: &str, value: f64) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = scrape(addr).await;
        if sample(&text, series) == Some(value) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} is not {value}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_scrape_after_a_known_workload_shows_its_counts() {
    let sleeping = Arc::new(AtomicBool::new(false));
    let flag = sleeping.clone();
    let metrics = Metrics::new();
    let config = Config::default()
        .metrics(metrics.clone())
        .time_limit(Duration::from_secs(1))
        .inbox_capacity(1)
        .before_mutation(move |event| {
            if event.name() == "sleep_set" {
                flag.store(true, Ordering::SeqCst);
            }
            match event.args() {
                [Value::Number(n)] if n.as_i64() == Some(13) => Err("not 13".into()),
                _ => Ok(()),
            }
        });
    let hub = config.hub().clone();
    let addr = start(config, metrics);
    let url = format!("ws://{addr}/storex");

    // Two clients in, each with a store.
    let mut a = Client::connect(&url, &[]).await.unwrap();
    a.join(COUNTER, json!({})).await;
    let mut b = Client::connect(&url, &[]).await.unwrap();
    b.join("Test.Other", json!({})).await;
    let text = scrape(addr).await;
    assert_eq!(sample(&text, "storex_connections"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "storex_sessions"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "storex_detached_sessions"), Some(0.0));
    let joins = format!(r#"storex_joins_total{{store="{COUNTER}"}}"#);
    assert_eq!(sample(&text, &joins), Some(1.0), "{text}");
    assert_eq!(
        sample(&text, r#"storex_joins_total{store="Test.Other"}"#),
        Some(1.0)
    );

    // A refused join, and a store that does not exist (closed with 4001).
    let mut c = Client::connect(&url, &[]).await.unwrap();
    assert_eq!(
        c.join(COUNTER, json!({"refuse": true})).await["type"],
        "error"
    );
    c.send_json(&json!({"type": "join", "store": "Evil.Store", "request": 1}))
        .await;
    assert_eq!(c.closed().await.0, 4001);

    // Mutations of every outcome a client can cause quickly.
    for _ in 0..3 {
        a.commit(COUNTER, "increase", json!([])).await;
    }
    a.commit(COUNTER, "set", json!([-1])).await;
    a.commit(COUNTER, "panic", json!([])).await;
    a.commit(COUNTER, "set", json!([13])).await;
    // A server-side one, pushed to the one session that holds the store.
    assert_eq!(hub.mutate(storex::mutation!(Counter, "increase")), Ok(1));
    assert_eq!(a.recv().await["diff"], common::stores::counter_diff(4));
    // B closes, D goes without a close; a page of another origin is refused.
    b.close().await;
    let d = Client::connect(&url, &[]).await.unwrap();
    drop(d);
    let refused = Client::connect(&url, &[("Origin", "http://evil.example")]).await;
    assert!(refused.is_err());

    until(
        addr,
        r#"storex_disconnects_total{reason="client_closed"}"#,
        1.0,
    )
    .await;
    let text = until(addr, r#"storex_disconnects_total{reason="lost"}"#, 1.0).await;
    let counts = [
        (mutations("ok", "client"), 3.0),
        (mutations("error", "client"), 1.0),
        (mutations("panic", "client"), 1.0),
        (mutations("refused", "client"), 1.0),
        (mutations("ok", "server"), 1.0),
        (format!(r#"storex_pushes_total{{store="{COUNTER}"}}"#), 1.0),
        (
            format!(r#"storex_mutation_duration_seconds_count{{store="{COUNTER}"}}"#),
            7.0,
        ),
        (joins.clone(), 1.0),
        (
            format!(r#"storex_join_refusals_total{{store="{COUNTER}"}}"#),
            1.0,
        ),
        (r#"storex_closes_total{code="4001"}"#.to_owned(), 1.0),
        (
            r#"storex_connection_refusals_total{reason="origin"}"#.to_owned(),
            1.0,
        ),
        ("storex_connections".to_owned(), 1.0),
    ];
    for (series, value) in &counts {
        assert_eq!(sample(&text, series), Some(*value), "{series} in\n{text}");
    }
    assert!(
        !text.contains("Evil"),
        "a client's text is never a label:\n{text}"
    );
    assert!(
        !text.contains("backplane_publish_failures"),
        "one process: no backplane failures to count"
    );

    // A mutation that outlives the time limit while server-side mutations pile up past the
    // session's inbox: the session is closed with 1008 and waits for a resume; the mutation
    // ends in a timeout.
    a.send_json(&json!({
        "type": "mutation", "store": COUNTER, "session": a.session,
        "data": {"name": "sleep_set", "data": [5000, 1]}, "request": "slow",
    }))
    .await;
    eventually("the slow mutation started", || {
        sleeping.load(Ordering::SeqCst)
    })
    .await;
    for _ in 0..3 {
        let _ = hub.mutate(storex::mutation!(Counter, "increase"));
    }
    assert_eq!(a.closed().await.0, 1008);
    let text = until(addr, &mutations("timeout", "client"), 1.0).await;
    assert_eq!(sample(&text, "storex_inbox_overflows_total"), Some(1.0));
    assert_eq!(
        sample(&text, r#"storex_closes_total{code="1008"}"#),
        Some(1.0)
    );
    let text = until(addr, "storex_connections", 0.0).await;
    assert_eq!(sample(&text, "storex_detached_sessions"), Some(1.0));
    assert_eq!(sample(&text, "storex_sessions"), Some(1.0));
}

#[actix_rt::test]
async fn rate_limited_mutations_and_capped_connections_are_counted() {
    let metrics = Metrics::new();
    let config = Config::default()
        .metrics(metrics.clone())
        .mutation_rate(0.001, 1)
        .max_connections(1);
    let addr = start(config, metrics);
    let url = format!("ws://{addr}/storex");
    let mut a = Client::connect(&url, &[]).await.unwrap();
    a.join(COUNTER, json!({})).await;
    a.commit(COUNTER, "increase", json!([])).await;
    let answer = a.commit(COUNTER, "increase", json!([])).await;
    assert_eq!(answer["error"], "Too many mutations.");
    assert!(Client::connect(&url, &[]).await.is_err(), "full");
    let text = scrape(addr).await;
    assert_eq!(sample(&text, &mutations("ok", "client")), Some(1.0));
    assert_eq!(
        sample(&text, &mutations("limited", "client")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"storex_connection_refusals_total{reason="full"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"storex_mutation_duration_seconds_count{{store="{COUNTER}"}}"#)
        ),
        Some(1.0),
        "a limited mutation did not run"
    );
}

#[cfg(feature = "redis")]
#[actix_rt::test]
async fn the_backplanes_publish_failures_are_counted() {
    use storex::redis::{RedisBackplane, RedisOptions};
    use storex::HubError;

    let mut redis = services::RedisServer::start().unwrap();
    let backplane = RedisBackplane::new(RedisOptions::new(redis.url())).unwrap();
    backplane.ready(PATIENCE).await.unwrap();
    let metrics = Metrics::new();
    let config = Config::default()
        .backplane(backplane.clone())
        .metrics(metrics.clone());
    let hub = config.hub().clone();
    let addr = start(config, metrics);
    let mut client = Client::connect(&format!("ws://{addr}/storex"), &[])
        .await
        .unwrap();
    client.join(COUNTER, json!({})).await;
    let failures = "storex_backplane_publish_failures_total";
    assert_eq!(sample(&scrape(addr).await, failures), Some(0.0));

    redis.kill();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !matches!(
        hub.mutate(storex::mutation!(Counter, "increase")),
        Err(HubError::Backplane(_))
    ) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing never failed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let text = scrape(addr).await;
    let counted = sample(&text, failures).unwrap();
    assert!(counted >= 1.0, "{text}");
    // The backplane's own count, read after the scrape (a publish queued before the kill may
    // still be counted lost meanwhile).
    assert!(
        counted <= backplane.stats().publish_failures as f64,
        "{text}"
    );
}
