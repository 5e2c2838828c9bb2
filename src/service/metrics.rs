//! Prometheus metrics in the text exposition format, without a metrics crate.
//!
//! Counters live in memory (requests, handovers by outcome, consent decisions); gauges that the
//! database knows better (routes by status, audit chain length) are read at scrape time, so they are
//! right after a restart and across several gateway nodes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::store::Db;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, route template, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// accepted | rejected | replayed → count.
    handovers: Mutex<BTreeMap<&'static str, u64>>,
    /// permit | deny → count.
    consent: Mutex<BTreeMap<&'static str, u64>>,
    /// Delivery state changes of a route (failing, recovered, dead, delivered) → count: one per
    /// change, never one per attempt, so an alert on `failing` or `dead` fires once per route.
    delivery: Mutex<BTreeMap<&'static str, u64>>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, by: u64) {
    // A poisoned lock only means another thread panicked while counting; the counts stay usable.
    let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
    *g.entry(k).or_insert(0) += by;
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16) {
        bump(&self.requests, (method.to_owned(), route.to_owned(), status), 1);
    }

    pub fn handover(&self, outcome: &'static str) {
        bump(&self.handovers, outcome, 1);
    }

    pub fn consent_decision(&self, permit: bool) {
        bump(&self.consent, if permit { "permit" } else { "deny" }, 1);
    }

    pub fn delivery_change(&self, change: &'static str) {
        bump(&self.delivery, change, 1);
    }

    /// The exposition text. Database gauges that cannot be read are left out (and `/readyz` says why).
    pub async fn render(&self, db: &Db) -> String {
        let mut out = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");

        out.push_str("# HELP acp_gateway_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE acp_gateway_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "acp_gateway_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}", esc(m), esc(r));
        }
        out.push_str("# HELP acp_gateway_handovers_total Handovers by outcome (accepted, rejected, replayed).\n");
        out.push_str("# TYPE acp_gateway_handovers_total counter\n");
        let handovers = self.handovers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for outcome in ["accepted", "rejected", "replayed"] {
            let _ = writeln!(out, "acp_gateway_handovers_total{{outcome=\"{outcome}\"}} {}", handovers.get(outcome).unwrap_or(&0));
        }
        out.push_str("# HELP acp_gateway_consent_decisions_total Consent decisions by result.\n");
        out.push_str("# TYPE acp_gateway_consent_decisions_total counter\n");
        let consent = self.consent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for d in ["permit", "deny"] {
            let _ = writeln!(out, "acp_gateway_consent_decisions_total{{decision=\"{d}\"}} {}", consent.get(d).unwrap_or(&0));
        }
        out.push_str("# HELP acp_gateway_delivery_state_changes_total Route delivery state changes (failing, recovered, dead, delivered); one per change, not per attempt.\n");
        out.push_str("# TYPE acp_gateway_delivery_state_changes_total counter\n");
        let delivery = self.delivery.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for c in ["failing", "recovered", "dead", "delivered"] {
            let _ = writeln!(out, "acp_gateway_delivery_state_changes_total{{change=\"{c}\"}} {}", delivery.get(c).unwrap_or(&0));
        }
        if let Ok(counts) = crate::store::route_counts(db).await {
            out.push_str("# HELP acp_gateway_routes Routes by status.\n");
            out.push_str("# TYPE acp_gateway_routes gauge\n");
            let counts: BTreeMap<String, i64> = counts.into_iter().collect();
            for s in crate::service::model::RouteStatus::ALL {
                let _ = writeln!(out, "acp_gateway_routes{{status=\"{}\"}} {}", s.as_str(), counts.get(s.as_str()).unwrap_or(&0));
            }
        }
        if let Ok(n) = crate::audit::chain_length(db).await {
            out.push_str("# HELP acp_gateway_audit_chain_length Entries in the audit hash chain.\n");
            out.push_str("# TYPE acp_gateway_audit_chain_length gauge\n");
            let _ = writeln!(out, "acp_gateway_audit_chain_length {n}");
        }
        out
    }
}
