//! The single-holder lease protocol (`MongoLocker`, the elector's term),
//! model-checked with `stateright`, no database: every interleaving of
//! clients' attempts, renewals, releases and fenced writes, with requests
//! and answers delayed or lost, the server binding `$$NOW` before it
//! applies, its clock ahead within the takeover grace, and unbounded time
//! (see `protocol_model/lease.rs` for what each action mirrors). The fair
//! queue extends it; its model is not built yet.

#[path = "protocol_model/common.rs"]
mod common;
#[path = "protocol_model/lease.rs"]
mod lease;

use stateright::Checker;

use common::{check, expect_counterexample};
use lease::{Bug, Lease};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `clients` lockers on one key: ttl 3 ticks, grace 1, one tick of lag
/// between a request's `$$NOW` and its apply, one of network delay
/// (beyond it, lost). Environment overrides (`C`, `TTL`, `SKEW`, `LAG`,
/// `D`, `W`, `ORPH`, `SYM`) for exploring by hand.
fn lease(clients: u8) -> Lease {
    Lease {
        clients: env("C", clients),
        ttl: env("TTL", 3),
        grace: 1,
        max_skew: env("SKEW", 0),
        lag: env("LAG", 1),
        delay: env("D", 1),
        writes: env("W", 0) == 1,
        orphans: env("ORPH", 0) == 1,
        symmetric: env("SYM", 1) == 1,
        bug: None,
    }
}

#[test]
fn three_lockers_never_hold_at_once_and_fences_grow() {
    check("lease, 3 clients", lease(3), |s| s.clone()).assert_properties();
}

#[test]
fn a_server_clock_ahead_within_the_grace_keeps_the_lease_exclusive() {
    let m = Lease {
        max_skew: 1,
        ..lease(2)
    };
    check("lease, skew 1, grace 1", m, |s| s.clone()).assert_properties();
}

#[test]
fn a_fenced_write_never_lands_after_a_later_grant() {
    let m = Lease {
        writes: true,
        ..lease(2)
    };
    check("lease, fenced writes", m, |s| s.clone()).assert_properties();
}

/// The checks can fail: each deliberate mistake is found.
#[test]
fn a_takeover_without_the_grace_is_caught() {
    let m = Lease {
        max_skew: 1,
        bug: Some(Bug::NoGrace),
        ..lease(2)
    };
    let c = check("lease, no grace", m, |s| s.clone());
    expect_counterexample(&c, "exclusion");
}

#[test]
fn a_lease_counted_from_its_answer_is_caught() {
    let m = Lease {
        bug: Some(Bug::LeaseFromAnswer),
        ..lease(2)
    };
    let c = check("lease, counted from the answer", m, |s| s.clone());
    expect_counterexample(&c, "exclusion");
}
