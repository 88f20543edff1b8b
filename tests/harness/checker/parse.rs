//! The history's lines (see `examples/worker/main.rs` for the workers'
//! lines, `tests/harness/recorder/` for the recorder's and the auditor's)
//! and their parsing.

use std::collections::BTreeMap;

/// A critical section, mastership term, permit or read/write share, from
/// when its holder learned it had it to its last validity check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub start: i64,
    pub end: i64,
    pub deadline: i64,
    pub valid: bool,
    /// A semaphore's permit count (`permits=`; 0 for other kinds).
    pub permits: u32,
    /// The lease's server expiry (ms) when the section ended; -1 unknown.
    pub expires: i64,
    /// When the holder started asking for it (a many-holder section); -1
    /// unknown.
    pub asked: i64,
    /// The last check of this holding that answered valid (from the
    /// `check` lines); -1 none.
    pub last_valid: i64,
}

impl Section {
    /// Until when the holder could act: its end or its deadline, and at
    /// least through every check that told it it still held.
    pub fn acted_until(&self) -> i64 {
        let until = self.end.min(self.deadline);
        if self.last_valid >= 0 {
            until.max(self.last_valid + 1)
        } else {
            until
        }
    }

    /// A section of a semaphore or a read-write lock.
    pub fn is_share(&self) -> bool {
        matches!(self.kind.as_str(), "permit" | "read" | "write")
    }
}

/// A fenced write attempt on the resource document of `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub worker: String,
    pub key: String,
    pub fence: i64,
    /// The write's unique id, also in the resource's own log ("" unknown).
    pub wid: String,
    pub checked: i64,
    /// When the write request was sent (after the validity check).
    pub sent: i64,
    pub done: i64,
    pub deadline: i64,
    /// What the validity check at `checked` answered.
    pub valid: bool,
    pub accepted: bool,
    pub probe: bool,
    /// `applied`, `stale`, `expired`, `nomatch`, or `error` (no answer:
    /// the outcome is unknown to the worker).
    pub result: String,
    /// The write's server time (`$$NOW`, ms) when accepted; -1 unknown.
    pub server: i64,
    /// How many times the driver sent it (2: retried after a network
    /// error; the answer is the retry's).
    pub attempts: u32,
}

/// The server time (ms) a fence was granted on a key; -1 unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub worker: String,
    pub key: String,
    /// `lock`, `master`, `permit`, `read` or `write`.
    pub kind: String,
    pub fence: i64,
    /// The owner identity in the document (a locker's or an elector's
    /// uuid, a share's grant token); "" unknown.
    pub uuid: String,
    pub granted: i64,
    /// When the holder learned it had won (shared monotonic clock); -1
    /// unknown.
    pub start: i64,
    /// `granted` came from the server's side (the recorder or the
    /// auditor), the worker's own read having failed.
    pub filled: bool,
}

/// One validity check (`is_valid()`, `is_master()`, the Python package's
/// `owned()`): `at` is taken before the call, `deadline` is the local
/// deadline the holder knew around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub worker: String,
    pub key: String,
    pub kind: String,
    pub fence: i64,
    pub at: i64,
    pub deadline: i64,
    pub valid: bool,
}

/// A release: `sent` just before the request, `done` after the answer (-1:
/// the worker did not live to log it), `result` `ok`, `error` or
/// `pending` (the line written before sending).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub sent: i64,
    pub done: i64,
    pub result: String,
}

/// A loss the holding's `lost()` receiver reported, seen at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loss {
    pub worker: String,
    pub key: String,
    pub fence: i64,
    pub at: i64,
    pub reason: String,
}

/// A holding in a lock or many-holder document, as the recorder saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    pub fence: i64,
    /// Its `ts_created` (the grant's `$$NOW`, ms); -1 unknown.
    pub created: i64,
    /// The owner identity (a lock's locker, a share's grant token).
    pub uuid: String,
}

/// One change event, in commit order (`seq`), from the recorder's change
/// stream; `op=gap` marks a stream reopened without its resume point
/// (events may be missing before it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub seq: u64,
    pub coll: String,
    pub key: String,
    pub op: String,
    /// Lock and share documents: the holdings after the event.
    pub held: Vec<Held>,
    /// Lock and share documents: `ts_released` after the event (-1 none).
    pub released: i64,
    /// Resource documents: the write the event appended ("" none).
    pub wid: String,
    /// The commit's wall time on the server (ms); -1 unknown.
    pub wall: i64,
    /// Lock documents: the holder's acquire call (`run`; "-" none).
    pub run: String,
    /// Lock documents: the fair queue after the event, in order: each
    /// entry's call and the end of its waiter lease (server ms).
    pub queue: Vec<(String, i64)>,
}

/// One entry of a resource document's own write log, in the order the
/// server appended them (`n`), merged from the auditor's polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub key: String,
    pub n: u64,
    pub wid: String,
    pub fence: i64,
    /// The write's `$$NOW` (ms).
    pub at: i64,
    pub worker: String,
}

/// A holding the auditor saw in a lock or share document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub key: String,
    pub fence: i64,
    pub created: i64,
    pub uuid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub sections: Vec<Section>,
    pub writes: Vec<Write>,
    pub grants: Vec<Grant>,
    pub checks: Vec<Check>,
    pub releases: Vec<Release>,
    pub losses: Vec<Loss>,
    pub commits: Vec<Commit>,
    pub logged: Vec<Logged>,
    pub seen: Vec<Seen>,
    /// Keys whose write log the auditor could not follow without a hole.
    pub audit_gaps: Vec<String>,
    /// The auditor's polls (`audit polls=N`); None: no audit.
    pub audit_polls: Option<u64>,
    /// Server restarts the harness made: from just before it stopped the
    /// server to when the server listened again (shared monotonic clock;
    /// for the reader of a history).
    pub restarts: Vec<(i64, i64)>,
    /// `kind` of each error line, with its count.
    pub errors: BTreeMap<String, usize>,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    let mut map = BTreeMap::new();
    for word in line.split_whitespace().skip(1) {
        if let Some((k, v)) = word.split_once('=') {
            if k == "msg" {
                break; // the rest of the line is free text
            }
            map.insert(k, v);
        }
    }
    map
}

struct Line<'a> {
    text: &'a str,
    f: BTreeMap<&'a str, &'a str>,
}

impl Line<'_> {
    fn get<T: std::str::FromStr>(&self, k: &str) -> Result<T, String> {
        self.f
            .get(k)
            .ok_or_else(|| format!("no `{k}` in: {}", self.text))?
            .parse()
            .map_err(|_| format!("bad `{k}` in: {}", self.text))
    }

    /// An optional field: `default` when absent.
    fn or<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        if self.f.contains_key(k) {
            self.get(k)
        } else {
            Ok(default)
        }
    }

    fn word(&self, k: &str) -> Result<String, String> {
        self.get(k)
    }

    fn flag(&self, k: &str) -> Result<bool, String> {
        Ok(self.get::<u8>(k)? == 1)
    }
}

/// `F:CREATED:UUID,...` or `-`.
fn queue(text: &str, line: &str) -> Result<Vec<(String, i64)>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|e| {
            let (call, expires) = e
                .rsplit_once(':')
                .ok_or_else(|| format!("bad `queue` in: {line}"))?;
            let expires = expires
                .parse()
                .map_err(|_| format!("bad `queue` in: {line}"))?;
            Ok((call.to_owned(), expires))
        })
        .collect()
}

fn held(text: &str, line: &str) -> Result<Vec<Held>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|h| {
            let mut parts = h.splitn(3, ':');
            let bad = || format!("bad `held` in: {line}");
            let fence = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let created = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
            let uuid = parts.next().ok_or_else(bad)?.to_owned();
            Ok(Held {
                fence,
                created,
                uuid,
            })
        })
        .collect()
}

impl History {
    pub fn parse(text: &str) -> Result<History, String> {
        let mut h = History::default();
        for text in text.lines().filter(|l| !l.trim().is_empty()) {
            let l = Line {
                text,
                f: fields(text),
            };
            match text.split_whitespace().next() {
                Some("section") => h.sections.push(Section {
                    kind: l.word("kind")?,
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    fence: l.get("fence")?,
                    start: l.get("start")?,
                    end: l.get("end")?,
                    deadline: l.get("deadline")?,
                    valid: l.flag("valid")?,
                    permits: l.or("permits", 0)?,
                    expires: l.or("expires", -1)?,
                    asked: l.or("asked", -1)?,
                    last_valid: -1,
                }),
                Some("write") => h.writes.push(Write {
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    fence: l.get("fence")?,
                    wid: l.or("wid", String::new())?,
                    checked: l.get("checked")?,
                    sent: l.get("sent")?,
                    done: l.get("done")?,
                    deadline: l.get("deadline")?,
                    valid: l.flag("valid")?,
                    accepted: l.flag("accepted")?,
                    probe: l.flag("probe")?,
                    result: l.or("result", String::new())?,
                    server: l.get("server")?,
                    attempts: l.or("attempts", 1)?,
                }),
                Some("grant") => h.grants.push(Grant {
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    kind: l.or("kind", "lock".to_owned())?,
                    fence: l.get("fence")?,
                    uuid: Some(l.or("uuid", String::new())?)
                        .filter(|u| u != "-")
                        .unwrap_or_default(),
                    granted: l.get("granted")?,
                    start: l.or("start", -1)?,
                    filled: false,
                }),
                Some("check") => h.checks.push(Check {
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    kind: l.word("kind")?,
                    fence: l.get("fence")?,
                    at: l.get("at")?,
                    deadline: l.get("deadline")?,
                    valid: l.flag("valid")?,
                }),
                Some("release") => h.releases.push(Release {
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    fence: l.get("fence")?,
                    sent: l.get("sent")?,
                    done: l.get("done")?,
                    result: l.word("result")?,
                }),
                Some("lost") => h.losses.push(Loss {
                    worker: l.word("w")?,
                    key: l.word("key")?,
                    fence: l.get("fence")?,
                    at: l.get("at")?,
                    reason: l.word("reason")?,
                }),
                Some("commit") => h.commits.push(Commit {
                    seq: l.get("seq")?,
                    coll: l.or("coll", String::new())?,
                    key: l.or("key", String::new())?,
                    op: l.word("op")?,
                    held: held(&l.or("held", "-".to_owned())?, text)?,
                    released: l.or("released", -1)?,
                    wid: l.or("wid", String::new())?,
                    wall: l.or("wall", -1)?,
                    run: l.or("run", "-".to_owned())?,
                    queue: queue(&l.or("queue", "-".to_owned())?, text)?,
                }),
                Some("logged") => h.logged.push(Logged {
                    key: l.word("key")?,
                    n: l.get("n")?,
                    wid: l.word("wid")?,
                    fence: l.get("fence")?,
                    at: l.get("at")?,
                    worker: l.word("w")?,
                }),
                Some("seen") => h.seen.push(Seen {
                    key: l.word("key")?,
                    fence: l.get("fence")?,
                    created: l.get("created")?,
                    uuid: l.word("uuid")?,
                }),
                Some("audit") => {
                    if let Some(key) = l.f.get("gap") {
                        h.audit_gaps.push((*key).to_owned());
                    } else {
                        *h.audit_polls.get_or_insert(0) += l.get::<u64>("polls")?;
                    }
                }
                Some("restart") => h.restarts.push((l.get("down")?, l.get("up")?)),
                Some("error") => *h.errors.entry(l.word("kind")?).or_default() += 1,
                _ => return Err(format!("unknown log line: {text}")),
            }
        }
        h.commits.sort_by_key(|c| c.seq);
        h.logged.sort_by(|a, b| (&a.key, a.n).cmp(&(&b.key, b.n)));
        h.link();
        Ok(h)
    }

    /// Joins what the lines say about one holding or write: each section's
    /// last valid check, and each accepted write's server time from the
    /// resource's own log when the worker could not read it back.
    fn link(&mut self) {
        let mut last: BTreeMap<(&str, &str, i64), i64> = BTreeMap::new();
        for c in self.checks.iter().filter(|c| c.valid && c.fence != 0) {
            let at = last.entry((&c.worker, &c.key, c.fence)).or_insert(-1);
            *at = (*at).max(c.at);
        }
        let last: BTreeMap<(String, String, i64), i64> = last
            .into_iter()
            .map(|((w, k, f), at)| ((w.to_owned(), k.to_owned(), f), at))
            .collect();
        for s in &mut self.sections {
            if let Some(&at) = last.get(&(s.worker.clone(), s.key.clone(), s.fence)) {
                s.last_valid = at;
            }
        }
        // A grant whose time the worker could not read (its read failed, or
        // the document already named a newer fence): the recorder's or the
        // auditor's view of the same (key, fence) has its `ts_created`.
        let mut created: BTreeMap<(&str, i64), i64> = BTreeMap::new();
        for s in self.seen.iter().filter(|s| s.fence != 0 && s.created >= 0) {
            created.insert((&s.key, s.fence), s.created);
        }
        for c in &self.commits {
            for h in c.held.iter().filter(|h| h.fence != 0 && h.created >= 0) {
                created.insert((&c.key, h.fence), h.created);
            }
        }
        let created: BTreeMap<(String, i64), i64> = created
            .into_iter()
            .map(|((k, f), t)| ((k.to_owned(), f), t))
            .collect();
        for g in self.grants.iter_mut().filter(|g| g.granted < 0) {
            if let Some(&t) = created.get(&(g.key.clone(), g.fence)) {
                g.granted = t;
                g.filled = true;
            }
        }
        let at: BTreeMap<&str, i64> = self.logged.iter().map(|e| (e.wid.as_str(), e.at)).collect();
        for w in &mut self.writes {
            if w.accepted && w.server < 0 {
                if let Some(&t) = at.get(w.wid.as_str()) {
                    w.server = t;
                }
            }
        }
    }

    /// Every `*.log` file in `dir`, as one history.
    pub fn read_dir(dir: &std::path::Path) -> Result<History, String> {
        let mut text = String::new();
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        entries.sort();
        for path in entries {
            text.push_str(&std::fs::read_to_string(&path).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        History::parse(&text)
    }
}
