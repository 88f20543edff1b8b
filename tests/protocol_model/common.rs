//! What both models share: the checker run (breadth first, one thread,
//! exhaustive), its report, and the names of time and clients.

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use stateright::{Checker, Model};

/// An instant, in ticks relative to the present (0: now; negative: past),
/// on the global clock, which is also every client's lease clock (they run
/// at the same rate: the lease margin, which covers a difference in rates,
/// is 0 in the models) and, plus the model's skew, the server's clock.
///
/// A tick of time moves every instant in the state one back ([`ago`]);
/// instants further back than a model's floor are all kept as the floor,
/// which changes no comparison that can still be made (each model's
/// `floor` says why). So the state space is finite without a time
/// horizon: the checks cover unbounded time.
pub type Tick = i8;

/// `t` one tick further in the past, no earlier than `floor`.
pub fn ago(t: Tick, floor: Tick) -> Tick {
    (t - 1).max(floor)
}

/// Renumbers the values `slots` point to, keeping their order and
/// equality, as 1, 2, 3.. (0 stays 0: none). Fences are only compared, so
/// this keeps the state finite as fences grow.
pub fn renumber(slots: &mut [&mut u8]) {
    let mut seen: Vec<u8> = slots.iter().map(|v| **v).filter(|&v| v != 0).collect();
    seen.sort_unstable();
    seen.dedup();
    for v in slots.iter_mut() {
        if **v != 0 {
            **v = seen.binary_search(&**v).map_or(0, |k| k as u8 + 1);
        }
    }
}

/// A client's index; [`NOBODY`] in an empty slot.
pub type Who = u8;
pub const NOBODY: Who = u8::MAX;

/// Checks `model` exhaustively (depth first, one thread: the test harness
/// runs the tests in parallel), each state counted once up to a renaming
/// of the clients (`symmetry`: a state's representative, the same state
/// with its clients in a canonical order), and prints what it visited.
pub fn check<M>(name: &str, model: M, _symmetry: fn(&M::State) -> M::State) -> impl Checker<M>
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq,
{
    let started = Instant::now();
    let mut b = model.checker();
    if let Some(n) = std::env::var("MAXS").ok().and_then(|v| v.parse().ok()) {
        b = b.target_state_count(n);
    }
    let checker = b.threads(1).spawn_bfs().join();
    eprintln!(
        "{name}: {} states ({} unique), depth {}, {:.1} s, done: {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
        started.elapsed().as_secs_f64(),
        checker.is_done()
    );
    checker
}

/// Asserts that the checker found a counterexample to `property`, and
/// prints its trace (the actions from the initial state).
pub fn expect_counterexample<M, C>(checker: &C, property: &'static str)
where
    M: Model,
    M::State: Clone + Debug + PartialEq,
    M::Action: Clone + Debug + PartialEq,
    C: Checker<M>,
{
    let path = checker
        .discovery(property)
        .unwrap_or_else(|| panic!("the broken model must violate `{property}`"));
    eprintln!("counterexample to `{property}`:");
    for action in path.into_actions() {
        eprintln!("  {action:?}");
    }
}
