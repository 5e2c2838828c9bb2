//! The outbox: the durable delivery queue between the store and the channels.
//!
//! Every accepted route waits in the `routes` table with its rendered message. Workers
//! ([`worker`]) claim due routes under a lease, re-check consent just before the attempt, hand the
//! stored bytes to the route's sink, and record the outcome, the new status and the audit entries in
//! one transaction. The state machine of a route (statuses as interface.md names them):
//!
//! ```text
//!            claim (consent permits)              sink ok
//!  pending ─────────────────────────► delivering ─────────► delivered ──replay──► (new pending route)
//!  retrying ──────────────────────────┘   │  │  │
//!     ▲          transient, attempts left │  │  │ permanent, or attempts used up
//!     └───────────────────────────────────┘  │  └──────────────────────────────► dead ──retry──► pending
//!  claim (consent denies) / withdrawal ──────┴─► blocked-consent ──permit──► pending
//!  operator cancel (any not delivered) ─────────► cancelled ──retry──► pending
//! ```
//!
//! A `delivering` route whose lease expired (its worker crashed) is claimed again; the attempt is
//! repeated with the same delivery key, so the receiver (or the spool's file name) deduplicates it.
//! A late result never overwrites a status an operator or a consent change set meanwhile.
//!
//! Alerting follows the state, not the attempts: a route that starts failing logs one warning and
//! bumps `failing`; when it is delivered after that, one `recovered`; when it goes `dead`, one error
//! and `dead`. Logs carry opaque ids only.

pub mod worker;

use std::time::Duration;

use rand::Rng;

use crate::config::RetryPolicy;

pub use worker::{Outbox, Workers};

/// The delay before the next attempt after `attempts` failed ones: exponential backoff with full
/// jitter (uniform in `[0, min(max_delay, base * 2^(attempts-1))]`), so that routes failing together
/// against one receiver spread out instead of returning in waves.
pub fn backoff(policy: &RetryPolicy, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(40);
    let cap = policy.base_delay_ms.saturating_mul(1u64 << exp).min(policy.max_delay_ms);
    Duration::from_millis(rand::rng().random_range(0..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_exponential_cap_and_the_maximum() {
        let p = RetryPolicy { max_attempts: 10, base_delay_ms: 100, max_delay_ms: 1_000 };
        for _ in 0..200 {
            assert!(backoff(&p, 1) <= Duration::from_millis(100));
            assert!(backoff(&p, 3) <= Duration::from_millis(400));
            assert!(backoff(&p, 30) <= Duration::from_millis(1_000));
            assert!(backoff(&p, u32::MAX) <= Duration::from_millis(1_000));
        }
        // Full jitter: not always the cap.
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| backoff(&p, 30)).collect();
        assert!(spread.len() > 1);
    }
}
