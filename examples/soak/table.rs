//! The soak's tables: what ran and what the checker judged, and the faults
//! per primitive.

use crate::harness::checker::Report;
use crate::schedule::{Coverage, KINDS};

pub fn print(secs: u64, seed: u64, r: &Report, cov: &Coverage) {
    println!("| soak ({secs} s, seed {seed}) | count |");
    println!("|---|---|");
    println!("| critical sections (lock) | {} |", r.lock_sections);
    println!(
        "| lock grants to a queued waiter, judged for fair order | {} |",
        r.fair_grants_judged
    );
    println!("| master terms | {} |", r.master_terms);
    println!(
        "| semaphore permits held (most valid at once, of 3) | {} ({}) |",
        r.permit_sections, r.most_permits_at_once
    );
    println!(
        "| read-write lock: read sections (most valid at once) / write sections | {} ({}) / {} |",
        r.read_sections, r.most_readers_at_once, r.write_sections
    );
    println!("| validity checks logged | {} |", r.checks);
    println!(
        "| fenced writes (accepted / rejected / no answer) | {} / {} / {} |",
        r.writes - r.rejected_writes,
        r.rejected_writes - r.unanswered_writes,
        r.unanswered_writes
    );
    println!(
        "| late writes after a lost lease (rejected / all) | {} / {} |",
        r.probes_rejected, r.probes
    );
    println!(
        "| writes sent after the local deadline (rejected / all) | {} / {} |",
        r.late_sends_rejected, r.late_sends
    );
    println!(
        "| resource log audited: entries / applied with no answer / retries the server ran again | {} / {} / {} |",
        r.logged_writes, r.unanswered_applied, r.retries_run_again
    );
    println!(
        "| commit order recorded: events / holes | {} / {} |",
        r.commit_events, r.commit_gaps
    );
    println!(
        "| grant rule, commit order: judged against a takeover / ordered by release | {} / {} |",
        r.grant_judged_commit, r.grant_ordered_commit
    );
    println!(
        "| grant rule, no commit order: provable takeovers judged / ordered by release, unjudged | {} / {} |",
        r.grant_judged_alone, r.grant_unjudged
    );
    println!(
        "| pairs server time alone would flag (release first in commit order) | {} ({}) |",
        r.server_time_pairs, r.server_time_pairs_release_first
    );
    println!(
        "| grant times not known / filled in from the server's side | {} / {} |",
        r.unknown_grants, r.filled_grants
    );
    let injected: Vec<String> = KINDS
        .iter()
        .map(|k| format!("{k} {}", cov.total(k)))
        .collect();
    println!("| faults injected | {} |", injected.join(", "));
    println!("| violations | {} |", r.violations.len());
    println!();
    cov.print();
}
