//! One client cannot stall the gateway (issue 17, items 2 and 3): every text field has a length limit
//! at intake, in every input form; rendering runs off the async workers; a request has a time budget;
//! and connections have header, body and idle timeouts and a cap below the descriptor limit.
//!
//! The machine running these tests is shared and noisy: they assert what happens (a refusal, a
//! close, an answer), with deadlines far above the configured timeouts, never how fast.

mod support_service;

use std::time::Duration;

use acp_gateway::validate::{IssueType, Location, Severity};
use proptest::prelude::*;
use serde_json::{json, Value};
use support_service::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short connection timeouts, so that a test sees them act within seconds.
const SHORT: &str = "[delivery]
workers = 0

[server.limits]
header_read_timeout_seconds = 2
body_read_timeout_seconds = 2
idle_timeout_seconds = 20
";

/// Far longer than any timeout configured here: a test that waits this long has seen a hang.
const HANG: Duration = Duration::from_secs(60);

fn words(n: usize) -> String {
    "woord ".repeat(n / 6 + 1)[..n].to_owned()
}

// ------------------------------------------------------------------------------------------------
// Item 2: field lengths at intake

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbroken_160000_character_family_name_is_refused_with_its_pointer() {
    let h = Harness::sqlite().await;
    let mut r = record(BSN, Some("agreed"));
    r["patient"]["name"]["family"] = json!("x".repeat(160_000));
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &discharge(r)).await;
    assert_eq!(s, 422, "{b}");
    let pointers: Vec<&str> = b["errors"].as_array().unwrap().iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert!(pointers.contains(&"/record/patient/name/family"), "{pointers:?}");
    let detail = b["errors"].as_array().unwrap().iter().find(|e| e["pointer"] == "/record/patient/name/family").unwrap();
    assert!(detail["message"].as_str().unwrap().contains("200 characters"), "{detail}");
    // Nothing was stored, and the gateway answers.
    let (s, list) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}")).await;
    assert_eq!(s, 200);
    assert_eq!(list["handovers"].as_array().map(Vec::len), Some(0), "{list}");
    let (s, _) = h.get(HOSPITAL, "/healthz").await;
    assert_eq!(s, 200);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_envelope_name_is_refused_with_its_pointer() {
    let h = Harness::sqlite().await;
    let mut body = discharge(record(BSN, Some("agreed")));
    body["recipients"][0]["organization"]["name"] = json!("y".repeat(100_000));
    let (s, b) = h.post(HOSPITAL, "/v1/handovers", &body).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["errors"].as_array().unwrap().iter().any(|e| e["pointer"] == "/recipients/0/organization/name"), "{b}");
    h.finish().await;
}

/// The QuestionnaireResponse form: IKNL's example with its Achternaam (linkId 966) made too long is
/// refused at that item.
#[test]
fn an_over_long_answer_in_a_questionnaire_response_is_refused_at_its_item() {
    let path = "../shared/reference/iknl-pzp-r4/resources/QuestionnaireResponse-HendrikHartman-20201001.json";
    let mut qr: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(set_answer(&mut qr, "966", &"z".repeat(5_000)), "the example has an Achternaam item");
    let intake = acp_gateway::intake::read(qr.to_string().as_bytes());
    let errors: Vec<_> = intake.problems.iter().filter(|p| p.severity == Severity::Error).collect();
    // The example itself is valid: the one error is the over-long answer, located at its item.
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].issue_type, IssueType::TooCostly);
    match &errors[0].location {
        Location::FhirPath(p) => assert!(p.contains("966"), "{p}"),
        other => panic!("expected a FHIRPath, got {other:?}"),
    }
    assert!(intake.valid_record().is_none());
}

/// Replaces the valueString of the item with `link` (anywhere in the tree); whether it was found.
fn set_answer(v: &mut Value, link: &str, text: &str) -> bool {
    match v {
        Value::Object(m) => {
            if m.get("linkId").and_then(Value::as_str) == Some(link) {
                if let Some(a) = m.get_mut("answer").and_then(|a| a.get_mut(0)) {
                    a["valueString"] = json!(text);
                    return true;
                }
            }
            m.values_mut().any(|x| set_answer(x, link, text))
        }
        Value::Array(a) => a.iter_mut().any(|x| set_answer(x, link, text)),
        _ => false,
    }
}

/// The FHIR resource form: a Patient's family name over the limit is refused at `Patient.name`.
#[test]
fn an_over_long_name_in_fhir_resources_is_refused_on_the_patient() {
    let record = acp_gateway::intake::read(include_bytes!("../fixtures/uniform-03-heart-failure-icd.json")).valid_record().cloned().unwrap();
    let bundle = acp_gateway::render::fhir::to_json(&acp_gateway::render::fhir::bundle(&record, acp_gateway::render::fhir::BundleKind::Collection));
    let long = "q".repeat(201);
    let family = record.patient.name.family.clone().unwrap();
    let bundle = bundle.replace(&format!("\"family\": \"{family}\""), &format!("\"family\": \"{long}\"")).replace(&format!("\"family\":\"{family}\""), &format!("\"family\":\"{long}\""));
    assert!(bundle.contains(&long), "the bundle carries the family name");
    let intake = acp_gateway::intake::read(bundle.as_bytes());
    let errors: Vec<_> = intake.problems.iter().filter(|p| p.severity == Severity::Error).collect();
    // The Patient's name, and wherever else the fixture uses the same family name (a relative).
    assert!(errors.iter().any(|p| p.location == Location::FhirPath("Patient.name".into())), "{errors:#?}");
    assert!(errors.iter().all(|p| p.issue_type == IssueType::TooCostly), "{errors:#?}");
}

/// Fields of the uniform record with their limits (`mappings/field-limits.toml`).
const FIELDS: &[(&str, usize)] = &[
    ("/patient/name/family", 200),
    ("/patient/name/given", 200),
    ("/patient/name/prefix", 50),
    ("/care_wishes", 10_000),
    ("/sense_of_purpose", 10_000),
    ("/treatment_limits/resuscitation/explanation", 10_000),
    ("/treatment_limits/hospital_admission/restriction", 10_000),
];

fn set(v: &mut Value, pointer: &str, text: String) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let mut at = v;
    for seg in parent.split('/').skip(1) {
        at = at.as_object_mut().unwrap().entry(seg).or_insert_with(|| json!({}));
    }
    at[key] = json!(text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// For any text field and any length around its limit: accepted up to the limit, refused above it
    /// with exactly that field's pointer.
    #[test]
    fn every_field_is_bounded_at_its_limit(field in 0..FIELDS.len(), delta in -3i64..=3, multibyte in any::<bool>()) {
        let (pointer, limit) = FIELDS[field];
        let n = (limit as i64 + delta) as usize;
        let unit = if multibyte { "é" } else { "a" };
        let mut r = record(BSN, Some("agreed"));
        set(&mut r, pointer, unit.repeat(n));
        let intake = acp_gateway::intake::read(r.to_string().as_bytes());
        let too_long: Vec<String> = intake.problems.iter().filter(|p| p.severity == Severity::Error).map(|p| p.location.to_string()).collect();
        if n > limit {
            prop_assert_eq!(too_long, vec![pointer.to_owned()]);
        } else {
            prop_assert!(too_long.is_empty(), "{:?}", too_long);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Item 2: rendering off the async workers, and a time budget

/// A handover that is slow to render and within every limit: 50 recipients that each get a PDF
/// letter (post), of a record with 90,000 characters of free text.
fn heavy_handover() -> Value {
    let mut r = record(BSN, Some("agreed"));
    for (i, p) in ["/care_wishes", "/sense_of_purpose", "/treatment_limits/resuscitation/explanation"].iter().enumerate() {
        set(&mut r, p, format!("{i} {}", words(9_990)));
    }
    for (i, t) in ["invasive_ventilation", "icu_admission", "antibiotics", "blood_products"].iter().enumerate() {
        r["treatment_limits"][t] = json!({"decision": "do-not-perform", "explanation": format!("{i} {}", words(9_990))});
    }
    let recipients: Vec<Value> = (0..50)
        .map(|i| json!({"role": "specialist-ouderengeneeskunde", "name": format!("Verpleeghuisarts {i}"), "organization": {"agb": format!("{:08}", 3000_0000 + i)}}))
        .collect();
    let mut body = discharge(r);
    body["recipients"] = json!(recipients);
    body
}

/// The in-process gateway runs on this test's runtime, one thread: a render on it would hold the
/// thread, and nothing else (`/healthz` included) could be answered until the render ended. A second
/// thread, with its own runtime, asks `/healthz` again and again while the heavy handover is in
/// progress; rendering off the runtime lets it be answered throughout, not only after the render.
#[tokio::test(flavor = "current_thread")]
async fn healthz_answers_while_a_heavy_render_runs() {
    let h = Harness::sqlite().await;
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let health_url = h.url("/healthz");
    let observer = {
        let running = running.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let http = reqwest::Client::new();
                let mut answered = 0;
                while running.load(std::sync::atomic::Ordering::SeqCst) {
                    let r = tokio::time::timeout(HANG, http.get(&health_url).send()).await.expect("/healthz answers").unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    // Counted only if the heavy handover was still in progress when the answer came.
                    if running.load(std::sync::atomic::Ordering::SeqCst) {
                        answered += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                answered
            })
        })
    };
    let started = std::time::Instant::now();
    let done = h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&heavy_handover()).send().await.unwrap();
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let answered = observer.join().unwrap();
    eprintln!("heavy handover: {:?}, {} /healthz answers meanwhile", started.elapsed(), answered);
    assert_eq!(done.status().as_u16(), 201);
    assert!(answered >= 5, "/healthz was answered {answered} time(s) during the heavy handover: rendering held the runtime");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_its_time_budget_gets_503_and_stores_nothing() {
    let h = Harness::sqlite_with("[delivery]\nworkers = 0\n\n[server.limits]\nrequest_timeout_seconds = 0.2\nrender_threads = 1\n").await;
    let resp = tokio::time::timeout(HANG, h.http.post(h.url("/v1/handovers")).bearer_auth(HOSPITAL).json(&heavy_handover()).send())
        .await
        .expect("an answer, not a hang")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    assert!(resp.headers().contains_key("retry-after"));
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["status"], 503, "{b}");
    // Whatever the abandoned render does later, the handover is not stored (one transaction).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, list) = h.get(HOSPITAL, &format!("/v1/handovers?patient={BSN}")).await;
    assert_eq!(s, 200);
    assert_eq!(list["handovers"].as_array().map(Vec::len), Some(0), "{list}");
    h.finish().await;
}

// ------------------------------------------------------------------------------------------------
// Item 3: slow clients

/// Reads until the server answers or closes; `None` when it does neither within `wait`.
async fn answer_or_close(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(e)) => Some(format!("closed: {e}")),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_closed_within_the_header_timeout() {
    let h = Harness::sqlite_with(SHORT).await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").await.unwrap();
    let start = std::time::Instant::now();
    // One header byte a second, never the end of the headers.
    let closed = loop {
        if start.elapsed() > HANG {
            break false;
        }
        if s.write_all(b"a").await.is_err() {
            break true;
        }
        if answer_or_close(&mut s, Duration::from_secs(1)).await.is_some() {
            break true;
        }
    };
    assert!(closed, "a client trickling its headers kept the connection for {HANG:?}");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408() {
    let h = Harness::sqlite_with(SHORT).await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    let head = format!(
        "POST /v1/handovers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {HOSPITAL}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let start = std::time::Instant::now();
    let answer = loop {
        if start.elapsed() > HANG {
            break None;
        }
        if s.write_all(b" ").await.is_err() {
            break Some("closed".to_owned());
        }
        if let Some(a) = answer_or_close(&mut s, Duration::from_secs(1)).await {
            break Some(a);
        }
    };
    let answer = answer.expect("a slow body was neither answered nor cut");
    assert!(answer.starts_with("HTTP/1.1 408") || answer.starts_with("closed") || answer.is_empty(), "{answer}");
    // The gateway itself answers.
    let (st, _) = h.get(HOSPITAL, "/healthz").await;
    assert_eq!(st, 200);
    h.finish().await;
}

/// One request on an open connection; the status line.
async fn healthz_on(stream: &mut TcpStream) -> Option<String> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.ok()?;
    let answer = answer_or_close(stream, Duration::from_secs(20)).await?;
    answer.lines().next().map(str::to_owned)
}

/// The real binary with a descriptor limit of 256 (soft and hard, so that raising it cannot help), and
/// a flood of 400 idle connections: `/healthz` answers on a connection opened before the flood, and a
/// fresh connection gets its answer (idle connections are closed, the cap keeps `accept` from running
/// out of descriptors).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_stop_healthz() {
    use std::os::unix::process::CommandExt;
    let dir = std::env::temp_dir().join(format!("acp-gateway-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_acp-gateway"));
    cmd.args(["serve"])
        .current_dir(&dir)
        .env("ACP_GATEWAY__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("ACP_GATEWAY__SERVER__LIMITS__HEADER_READ_TIMEOUT_SECONDS", "8")
        .env("ACP_GATEWAY__DELIVERY__WORKERS", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut first = None;
    for _ in 0..200 {
        if let Ok(mut s) = TcpStream::connect(&addr).await {
            if healthz_on(&mut s).await.is_some_and(|l| l.contains("200")) {
                first = Some(s);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut first = first.expect("the gateway starts");

    // The flood: 400 connections at once that send nothing. Connects beyond the listen queue may
    // not complete; those that do are held open.
    let connects: Vec<_> = (0..400)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await })
        })
        .collect();
    let mut flood = Vec::new();
    for c in connects {
        if let Ok(Ok(Ok(s))) = c.await {
            flood.push(s);
        }
    }
    assert!(flood.len() > 256 - 128, "the flood opened only {} connections", flood.len());

    let on_existing = healthz_on(&mut first).await;
    // A fresh connection, tried until it answers or until far past every timeout.
    let start = std::time::Instant::now();
    let mut fresh = None;
    while start.elapsed() < HANG * 2 && fresh.is_none() {
        if let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr)).await {
            fresh = healthz_on(&mut s).await.filter(|l| l.contains("200"));
        }
    }
    drop(flood);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(on_existing.as_deref().is_some_and(|l| l.contains("200")), "on the existing connection: {on_existing:?}");
    assert!(fresh.is_some(), "no fresh connection got /healthz answered after a flood of idle connections");
}
