//! Model 1: today's single-holder lease (`MongoLocker`), one document per
//! key. Every action names the code it mirrors.
//!
//! A client is one locker (one owner identity) making acquire calls one
//! after the other; each call sends attempts until one is granted or it
//! gives up. A client has at most one request outstanding (the locker
//! serialises its round trips), plus at most one it stopped waiting for
//! (an orphan: a timed-out request the server may still apply). A request
//! is sent, received by the server (which binds its `$$NOW` then: the
//! server's clock, the global one plus the skew), applied later
//! (atomically, other requests possibly applied in between, so in apply
//! order `$$NOW` can go back), and answered, late or never. Time has no
//! horizon (see [`Tick`]): calls, attempts, renewals and writes go on
//! without bound.

use stateright::{Model, Property};

use super::common::{ago, renumber, Tick, Who, NOBODY};

/// A deliberate mistake, for the tests that show the checker finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// `take_condition` takes an expired lock at `expires <= $$NOW`,
    /// without the takeover grace.
    NoGrace,
    /// The client counts its lease from the answer's arrival, not from
    /// the attempt's send time.
    LeaseFromAnswer,
    /// A release forgets `unreleased_until`: it frees the lock at once.
    /// (Not one the tests check: it shows only with orphaned writes,
    /// whose state space is beyond a CI run's minutes.)
    ForgetUnreleased,
}

#[derive(Clone, Debug)]
pub struct Lease {
    pub clients: u8,
    pub ttl: Tick,
    pub grace: Tick,
    /// How far the server's clock may be ahead of the global one, stepping
    /// anywhere in `0..=max_skew` (failovers, NTP steps).
    pub max_skew: Tick,
    /// How many ticks may pass between a request's receipt (`$$NOW`) and
    /// its apply.
    pub lag: Tick,
    /// How many ticks a request or an answer may take on the network
    /// (beyond that it is lost: `Lose`).
    pub delay: Tick,
    /// Whether holders make fenced writes.
    pub writes: bool,
    /// Whether a client may stop waiting for an unapplied fenced write
    /// (a timeout), which the server may still apply. (An abandoned
    /// attempt or renewal only keeps the lock longer on the server, which
    /// no property here can tell.)
    pub orphans: bool,
    /// Whether states that differ only in the clients' names are one
    /// (off for readable counterexamples).
    pub symmetric: bool,
    pub bug: Option<Bug>,
}

impl Lease {
    fn margin(&self) -> Tick {
        0
    }

    /// The earliest instant kept apart: every comparison is between an
    /// instant and one at most `lag` back (a `$$NOW`), or the present, or
    /// a send time at most `ttl` back (a grant or renewal in time): an
    /// expiry plus the grace at or before `floor` is before all of them.
    fn floor(&self) -> Tick {
        -(self
            .ttl
            .max(self.lag + self.grace + self.max_skew)
            .max(self.delay)
            + 1)
    }
}

/// The lock document (`src/foundation/single/document.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Doc {
    pub locked: bool,
    pub owner: Who,
    pub run: u8,
    pub fence: u8,
    pub expires: Tick,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Attempt {
        call: u8,
    },
    Touch {
        fence: u8,
    },
    Release {
        fence: u8,
        until: Option<Tick>,
    },
    TakeBack {
        call: u8,
        until: Option<Tick>,
    },
    /// A fenced write; `foreign`: the earliest server time of a grant of
    /// a higher fence to another client, applied since this lease's grant;
    /// `exempt` once its holder released that lease while it was still in
    /// flight (the documented caveat).
    Write {
        fence: u8,
        expires: Tick,
        foreign: Option<Tick>,
        exempt: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Sent,
    /// Received: `$$NOW` bound to `srv` (server time).
    Bound {
        srv: Tick,
    },
    Done(Reply),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reply {
    /// The document after the attempt named this client
    /// (`LockRecord::Taken(info)` with our uuid): its fence, expiry and
    /// grant time.
    Granted {
        fence: u8,
        expires: Tick,
        created: Tick,
    },
    Refused,
    Touched(Option<Tick>),
    Ack,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Req {
    pub op: Op,
    pub sent: Tick,
    pub stage: Stage,
    /// When it reached its stage.
    pub since: Tick,
}

/// An acquire call in progress (`LockCore::call`): its token (the `run`
/// field), and whether an attempt may have left the lock naming it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Call {
    pub token: u8,
    pub left: bool,
}

/// One acquisition as its client knows it (`src/foundation/tenure.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenure {
    pub fence: u8,
    pub expires: Tick,
    pub deadline: Tick,
    pub live: bool,
    /// As in [`Op::Write`].
    pub foreign: Option<Tick>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Client {
    pub call: Option<Call>,
    pub tenure: Option<Tenure>,
    pub unreleased_until: Option<Tick>,
    pub req: Option<Req>,
    pub orphan: Option<Req>,
}

/// What the last step did, for the `sometimes` properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    TakenOver,
    WriteRefused,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State {
    pub skew: Tick,
    pub doc: Doc,
    pub clients: Vec<Client>,
    /// The fence of the latest acquisition a client started acting on.
    pub last_started: u8,
    /// Checks made when something happens (a grant, a start, a write).
    pub fences_out_of_order: bool,
    pub late_write: bool,
    pub event: Option<Event>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Current,
    Orphan,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The global clock advances (every clock with it): every instant
    /// moves one tick into the past.
    Tick,
    /// The server's clock steps (a failover to a member ahead or behind,
    /// within `max_skew`).
    Skew(Tick),
    /// `LockCore::call`: a new acquire call and its first attempt
    /// (`LockCore::attempt`, after `refuse_if_held` files a stale tenure's
    /// expiry in `unreleased_until`).
    Start(Who),
    /// The call's next attempt (`waiting::acquire` retrying), whenever.
    Retry(Who),
    /// The call ends ungranted (its timeout): `LockCore::take_back` when
    /// an attempt may have left the lock naming it.
    GiveUp(Who),
    /// `LockCore::touch_fence` (a renewal; keep-alive sends the same).
    Touch(Who),
    /// `Fenced::update_one` through the guard (`src/fenced/`).
    Write(Who),
    /// `LockCore::release_fence`.
    Release(Who),
    /// The server receives the request: `$$NOW` is bound.
    Bind(Who, Slot),
    /// The server applies it (`LockStore::try_acquire`, `touch`,
    /// `release_holding`, or the fenced write).
    Apply(Who, Slot),
    /// The answer reaches the client.
    Answer(Who),
    /// The request or its answer is lost: the client sees an error. An
    /// unapplied request is never applied.
    Lose(Who),
    /// The client stops waiting for an unapplied request (a timeout), which
    /// the server may still apply.
    Abandon(Who),
}

impl Lease {
    /// `Tenure::valid_at(now)`: live and before its local deadline.
    fn valid(c: &Client) -> bool {
        c.tenure.as_ref().is_some_and(|t| t.live && 0 < t.deadline)
    }

    fn send(c: &mut Client, op: Op) {
        c.req = Some(Req {
            op,
            sent: 0,
            stage: Stage::Sent,
            since: 0,
        });
    }

    /// A token for a new call: one no field of this client's still names.
    fn new_token(s: &State, me: Who) -> u8 {
        let c = &s.clients[me as usize];
        let used = |t: u8| {
            (s.doc.owner == me && s.doc.run == t)
                || [&c.req, &c.orphan].into_iter().flatten().any(|r| {
                    matches!(r.op, Op::Attempt { call } | Op::TakeBack { call, .. } if call == t)
                })
        };
        (0..).find(|&t| !used(t)).unwrap_or(0)
    }

    /// A grant of `fence` to `owner` at server time `srv`: every other
    /// client's lease and writes now have a higher foreign grant.
    fn note_grant(s: &mut State, owner: Who, srv: Tick) {
        let earliest = |f: &mut Option<Tick>| *f = Some(f.map_or(srv, |t| t.min(srv)));
        for (i, c) in s.clients.iter_mut().enumerate() {
            if i as Who == owner {
                continue;
            }
            if let Some(t) = c.tenure.as_mut() {
                earliest(&mut t.foreign);
            }
            for r in [&mut c.req, &mut c.orphan].into_iter().flatten() {
                if let Op::Write { foreign, .. } = &mut r.op {
                    earliest(foreign);
                }
            }
        }
    }

    /// `take_condition` and `acquire_pipeline`
    /// (`src/foundation/single/pipeline.rs`), `next_fence`
    /// (`src/foundation/expr.rs`; without deletions the floor never wins).
    fn apply_attempt(&self, s: &mut State, me: Who, call: u8, srv: Tick) -> Reply {
        let grace = if self.bug == Some(Bug::NoGrace) {
            0
        } else {
            self.grace
        };
        let d = &s.doc;
        let expired = d.expires + grace <= srv;
        if !d.locked || expired || d.owner == me {
            if d.locked && d.owner != me {
                s.event = Some(Event::TakenOver);
            }
            // Fences are renumbered in order after each step: one more
            // than the stored one is above every fence in the state.
            let fence = d.fence + 1;
            Self::note_grant(s, me, srv);
            s.doc = Doc {
                locked: true,
                owner: me,
                run: call,
                fence,
                expires: srv + self.ttl,
            };
        }
        let d = &s.doc;
        if d.locked && d.owner == me {
            Reply::Granted {
                fence: d.fence,
                expires: d.expires,
                // The attempt took it (it names us): granted now.
                created: srv,
            }
        } else {
            Reply::Refused
        }
    }

    /// `release_filter` and `release_pipeline` (no hold): kept taken until
    /// `until` when the lock is live and `until` is later, else freed.
    fn apply_release(&self, s: &mut State, matches: bool, until: Option<Tick>, srv: Tick) {
        if !matches {
            return;
        }
        let until = if self.bug == Some(Bug::ForgetUnreleased) {
            None
        } else {
            until
        };
        match until {
            Some(u) if s.doc.expires > srv && u > srv => s.doc.expires = u,
            _ => s.doc.locked = false,
        }
    }

    fn apply(&self, s: &mut State, me: Who, req: &Req, srv: Tick) -> Reply {
        match req.op {
            Op::Attempt { call } => self.apply_attempt(s, me, call, srv),
            // `LockStore::touch`: the filter names the acquisition and
            // wants it unexpired in server time.
            Op::Touch { fence } => {
                let d = &mut s.doc;
                if d.locked && d.owner == me && d.fence == fence && d.expires > srv {
                    d.expires = srv + self.ttl;
                    Reply::Touched(Some(d.expires))
                } else {
                    Reply::Touched(None)
                }
            }
            // `Whose::Acquisition(uuid, fence)`.
            Op::Release { fence, until } => {
                let m = s.doc.locked && s.doc.owner == me && s.doc.fence == fence;
                self.apply_release(s, m, until, srv);
                Reply::Ack
            }
            // `Whose::Run(uuid, call)`.
            Op::TakeBack { call, until } => {
                let m = s.doc.locked && s.doc.owner == me && s.doc.run == call;
                self.apply_release(s, m, until, srv);
                Reply::Ack
            }
            // The fenced write's filter (`src/fenced/pipeline.rs`):
            // `$$NOW` before the lease's expiry as the holder last knew
            // it. (Its other half, the stored fence not above ours, only
            // narrows what lands: the model checks that the expiry alone
            // keeps every accepted write before any later grant to
            // another client, in server time.)
            Op::Write {
                expires,
                foreign,
                exempt,
                ..
            } => {
                if srv < expires {
                    if foreign.is_some_and(|g| g <= srv) && !exempt {
                        s.late_write = true;
                    }
                } else {
                    s.event = Some(Event::WriteRefused);
                }
                Reply::Ack
            }
        }
    }

    /// The client reads an answer (`LockCore::attempt` with
    /// `grants::start`, `LockCore::touch_fence` with `grants::renewed`),
    /// or an error when `reply` is `None`.
    fn receive(&self, s: &mut State, me: Who, req: Req, reply: Option<Reply>) {
        let now = 0;
        let ttl = self.ttl - self.margin();
        let c = &mut s.clients[me as usize];
        match (req.op, reply) {
            (
                Op::Attempt { .. },
                Some(Reply::Granted {
                    fence,
                    expires,
                    created,
                }),
            ) => {
                let from = if self.bug == Some(Bug::LeaseFromAnswer) {
                    now
                } else {
                    req.sent
                };
                let deadline = from + ttl;
                let Some(call) = c.call.as_mut() else { return };
                if now >= deadline {
                    // Too late to use: nothing handed out.
                    call.left = true;
                    return;
                }
                c.call = None;
                c.tenure = Some(Tenure {
                    fence,
                    expires,
                    deadline,
                    live: true,
                    foreign: None,
                });
                if c.unreleased_until.is_some_and(|u| created >= u) {
                    c.unreleased_until = None;
                }
                if fence <= s.last_started {
                    s.fences_out_of_order = true;
                }
                s.last_started = fence;
            }
            (Op::Attempt { .. }, Some(_)) => {}
            (Op::Attempt { .. }, None) => {
                if let Some(call) = c.call.as_mut() {
                    call.left = true;
                }
            }
            (Op::Touch { fence }, Some(Reply::Touched(got))) => {
                let Some(t) = c.tenure.as_mut().filter(|t| t.fence == fence) else {
                    return;
                };
                match got {
                    Some(expires) if t.live && now < t.deadline => {
                        t.deadline = req.sent + ttl;
                        t.expires = expires;
                    }
                    Some(_) => t.live = false,
                    // `TakenOver`: forgotten.
                    None => c.tenure = None,
                }
            }
            _ => {}
        }
    }

    fn client_actions(&self, s: &State, i: Who, out: &mut Vec<Action>) {
        let c = &s.clients[i as usize];
        for (slot, req) in [(Slot::Current, &c.req), (Slot::Orphan, &c.orphan)] {
            match req.as_ref().map(|r| &r.stage) {
                Some(Stage::Sent) => out.push(Action::Bind(i, slot)),
                Some(Stage::Bound { .. }) => out.push(Action::Apply(i, slot)),
                _ => {}
            }
        }
        if let Some(req) = &c.req {
            let done = matches!(req.stage, Stage::Done(_));
            if done {
                out.push(Action::Answer(i));
            }
            out.push(Action::Lose(i));
            let write = matches!(req.op, Op::Write { .. });
            if self.orphans && write && c.orphan.is_none() && !done {
                out.push(Action::Abandon(i));
            }
            return;
        }
        let valid = Self::valid(c);
        match &c.call {
            Some(_) => {
                out.push(Action::Retry(i));
                out.push(Action::GiveUp(i));
            }
            None if !valid => out.push(Action::Start(i)),
            None => {}
        }
        if valid {
            out.push(Action::Touch(i));
            if self.writes {
                out.push(Action::Write(i));
            }
        }
        if c.tenure.is_some() {
            out.push(Action::Release(i));
        }
    }

    /// The network delivers within `delay` and the server applies within
    /// `lag` of the receipt: a request or answer due holds the clock.
    fn overdue(&self, s: &State) -> bool {
        let due = |r: &Req| match r.stage {
            Stage::Sent | Stage::Done(_) => r.since <= -self.delay,
            Stage::Bound { .. } => r.since <= -self.lag,
        };
        s.clients
            .iter()
            .any(|c| [&c.req, &c.orphan].into_iter().flatten().any(due))
    }

    /// Forgets what no later step can tell apart, so that such states are
    /// one: a free document's holder fields, an ended lease's deadline,
    /// the send time of requests whose answer starts nothing, expiries
    /// and grant times when nothing (a fenced write, a release's `until`)
    /// can read them; then renumbers the fences.
    fn normalize(&self, s: &mut State) {
        let floor = self.floor();
        if !s.doc.locked {
            s.doc.owner = NOBODY;
            s.doc.run = 0;
            s.doc.expires = floor;
        }
        for c in &mut s.clients {
            if let Some(t) = c.tenure.as_mut() {
                if t.deadline <= 0 || !t.live {
                    t.live = false;
                    t.deadline = floor;
                    t.foreign = None;
                }
                if !self.writes {
                    t.expires = floor;
                    t.foreign = None;
                }
            }
            if !self.writes {
                c.unreleased_until = None;
            }
            for r in [&mut c.req, &mut c.orphan].into_iter().flatten() {
                let starts = matches!(r.op, Op::Attempt { .. } | Op::Touch { .. })
                    && !matches!(r.stage, Stage::Done(Reply::Refused | Reply::Touched(None)));
                if !starts {
                    r.sent = 0;
                }
                match &mut r.stage {
                    Stage::Done(Reply::Granted {
                        expires, created, ..
                    }) if !self.writes => {
                        *expires = floor;
                        *created = floor;
                    }
                    Stage::Done(Reply::Touched(Some(e))) if !self.writes => *e = floor,
                    _ => {}
                }
            }
        }
        renumber(&mut Self::fences(s));
        for i in 0..s.clients.len() {
            Self::renumber_calls(s, i as Who);
        }
        if self.symmetric {
            Self::sort_clients(s);
        }
    }

    /// Renames this client's call tokens 0, 1, 2.. in the order the state
    /// names them (the current call first): only their equality matters.
    fn renumber_calls(s: &mut State, me: Who) {
        let mut names: Vec<u8> = Vec::new();
        let mut rename = |t: &mut u8| {
            let k = names.iter().position(|n| n == t).unwrap_or_else(|| {
                names.push(*t);
                names.len() - 1
            });
            *t = k as u8;
        };
        let c = &mut s.clients[me as usize];
        if let Some(call) = c.call.as_mut() {
            rename(&mut call.token);
        }
        if s.doc.owner == me {
            rename(&mut s.doc.run);
        }
        for r in [&mut c.req, &mut c.orphan].into_iter().flatten() {
            if let Op::Attempt { call } | Op::TakeBack { call, .. } = &mut r.op {
                rename(call);
            }
        }
    }

    /// Puts the clients in a canonical order (sorted, the one the document
    /// names told apart), renaming the document's owner to match: the
    /// clients are alike, so a state and its renamings behave alike.
    fn sort_clients(s: &mut State) {
        let mut order: Vec<usize> = (0..s.clients.len()).collect();
        order.sort_by(|&a, &b| {
            let key = |i: usize| (s.doc.owner as usize == i, &s.clients[i]);
            key(a).cmp(&key(b))
        });
        if s.doc.owner != NOBODY {
            s.doc.owner = order
                .iter()
                .position(|&i| i == s.doc.owner as usize)
                .unwrap() as Who;
        }
        s.clients = order.iter().map(|&i| s.clients[i].clone()).collect();
    }

    /// Every instant in the state, to move back when time passes.
    fn instants(s: &mut State) -> Vec<&mut Tick> {
        let mut v: Vec<&mut Tick> = vec![&mut s.doc.expires];
        for c in &mut s.clients {
            if let Some(t) = c.tenure.as_mut() {
                v.extend([&mut t.expires, &mut t.deadline]);
                v.extend(t.foreign.as_mut());
            }
            v.extend(c.unreleased_until.as_mut());
            for r in [&mut c.req, &mut c.orphan].into_iter().flatten() {
                v.extend([&mut r.sent, &mut r.since]);
                match &mut r.stage {
                    Stage::Sent
                    | Stage::Done(Reply::Ack | Reply::Refused | Reply::Touched(None)) => {}
                    Stage::Bound { srv } => v.push(srv),
                    Stage::Done(Reply::Granted {
                        expires, created, ..
                    }) => v.extend([expires, created]),
                    Stage::Done(Reply::Touched(Some(e))) => v.push(e),
                }
                match &mut r.op {
                    Op::Attempt { .. } | Op::Touch { .. } => {}
                    Op::Release { until, .. } | Op::TakeBack { until, .. } => {
                        v.extend(until.as_mut())
                    }
                    Op::Write {
                        expires, foreign, ..
                    } => {
                        v.push(expires);
                        v.extend(foreign.as_mut());
                    }
                }
            }
        }
        v
    }

    /// Every fence in the state, to renumber.
    fn fences(s: &mut State) -> Vec<&mut u8> {
        let mut v: Vec<&mut u8> = vec![&mut s.doc.fence, &mut s.last_started];
        for c in &mut s.clients {
            if let Some(t) = c.tenure.as_mut() {
                v.push(&mut t.fence);
            }
            for r in [&mut c.req, &mut c.orphan].into_iter().flatten() {
                if let Stage::Done(Reply::Granted { fence, .. }) = &mut r.stage {
                    v.push(fence);
                }
                match &mut r.op {
                    Op::Attempt { .. } | Op::TakeBack { .. } => {}
                    Op::Touch { fence } | Op::Release { fence, .. } | Op::Write { fence, .. } => {
                        v.push(fence)
                    }
                }
            }
        }
        v
    }
}

impl Model for Lease {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let client = Client {
            call: None,
            tenure: None,
            unreleased_until: None,
            req: None,
            orphan: None,
        };
        vec![State {
            skew: 0,
            doc: Doc {
                locked: false,
                owner: NOBODY,
                run: 0,
                fence: 0,
                expires: self.floor(),
            },
            clients: vec![client; self.clients as usize],
            last_started: 0,
            fences_out_of_order: false,
            late_write: false,
            event: None,
        }]
    }

    fn actions(&self, s: &State, out: &mut Vec<Action>) {
        if !self.overdue(s) {
            out.push(Action::Tick);
        }
        for k in 0..=self.max_skew {
            if k != s.skew {
                out.push(Action::Skew(k));
            }
        }
        for i in 0..self.clients {
            self.client_actions(s, i, out);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        s.event = None;
        match action {
            Action::Tick => {
                let floor = self.floor();
                for t in Self::instants(&mut s) {
                    *t = ago(*t, floor);
                }
            }
            Action::Skew(k) => s.skew = k,
            Action::Start(i) => {
                let token = Self::new_token(&s, i);
                let c = &mut s.clients[i as usize];
                if let Some(t) = c.tenure.take() {
                    let u = c.unreleased_until.map_or(t.expires, |u| u.max(t.expires));
                    c.unreleased_until = Some(u);
                }
                c.call = Some(Call { token, left: false });
                Self::send(c, Op::Attempt { call: token });
            }
            Action::Retry(i) => {
                let c = &mut s.clients[i as usize];
                let token = c.call.as_ref()?.token;
                Self::send(c, Op::Attempt { call: token });
            }
            Action::GiveUp(i) => {
                let c = &mut s.clients[i as usize];
                let call = c.call.take()?;
                if call.left {
                    let until = c.unreleased_until;
                    Self::send(
                        c,
                        Op::TakeBack {
                            call: call.token,
                            until,
                        },
                    );
                }
            }
            Action::Touch(i) => {
                let c = &mut s.clients[i as usize];
                let fence = c.tenure.as_ref()?.fence;
                Self::send(c, Op::Touch { fence });
            }
            Action::Write(i) => {
                let c = &mut s.clients[i as usize];
                let t = c.tenure.as_ref()?;
                let op = Op::Write {
                    fence: t.fence,
                    expires: t.expires,
                    foreign: t.foreign,
                    exempt: false,
                };
                Self::send(c, op);
            }
            Action::Release(i) => {
                let c = &mut s.clients[i as usize];
                let fence = c.tenure.take()?.fence;
                if let Some(Req {
                    op:
                        Op::Write {
                            fence: f, exempt, ..
                        },
                    ..
                }) = c.orphan.as_mut()
                {
                    if *f == fence {
                        *exempt = true;
                    }
                }
                let until = c.unreleased_until;
                Self::send(c, Op::Release { fence, until });
            }
            Action::Bind(i, slot) => {
                let srv = s.skew;
                let c = &mut s.clients[i as usize];
                let req = match slot {
                    Slot::Current => c.req.as_mut()?,
                    Slot::Orphan => c.orphan.as_mut()?,
                };
                req.stage = Stage::Bound { srv };
                req.since = 0;
            }
            Action::Apply(i, slot) => {
                let c = &mut s.clients[i as usize];
                let req = match slot {
                    Slot::Current => c.req.clone()?,
                    Slot::Orphan => c.orphan.take()?,
                };
                let Stage::Bound { srv, .. } = req.stage else {
                    return None;
                };
                let reply = self.apply(&mut s, i, &req, srv);
                if slot == Slot::Current {
                    let req = s.clients[i as usize].req.as_mut()?;
                    req.stage = Stage::Done(reply);
                    req.since = 0;
                }
            }
            Action::Answer(i) => {
                let req = s.clients[i as usize].req.take()?;
                let Stage::Done(reply) = req.stage.clone() else {
                    return None;
                };
                self.receive(&mut s, i, req, Some(reply));
            }
            Action::Lose(i) => {
                let req = s.clients[i as usize].req.take()?;
                self.receive(&mut s, i, req, None);
            }
            Action::Abandon(i) => {
                let c = &mut s.clients[i as usize];
                let req = c.req.take()?;
                c.orphan = Some(req.clone());
                self.receive(&mut s, i, req, None);
            }
        }
        self.normalize(&mut s);
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("exclusion", |_, s: &State| {
                s.clients.iter().filter(|c| Self::valid(c)).count() <= 1
            }),
            Property::always("fences grow", |_, s: &State| !s.fences_out_of_order),
            Property::always("fenced writes precede later grants", |_, s: &State| {
                !s.late_write
            }),
            Property::sometimes("taken over after an expiry", |_, s: &State| {
                s.event == Some(Event::TakenOver)
            }),
            Property::sometimes("a stale fenced write refused", |m: &Lease, s: &State| {
                !m.writes || s.event == Some(Event::WriteRefused)
            }),
        ]
    }
}
