"""A mixed-fleet worker on the Python package `mongoelector` (1.0.2): holds a
lock or runs an elector on a key, and appends what it held to a history log
in the format of `examples/worker/`, which `tests/harness/checker/` reads.
Driven by `tests/python_fleet.rs`; not an example of good application code.

    MONGODB_URI=... python worker.py --mode lock|elector --name NAME --key KEY
        --db DB --log FILE [--ttl S] [--step S] [--hold S] [--acts N]
        [--once 0|1]

Python holders have no fence: sections are logged with fence=0. A section
runs from when the holder learned it won (`start`) to its last ownership
check (`end`, taken after the check answered), and `deadline` is the
holder's own expiry (`ts_expire`, in its wall clock) mapped onto
CLOCK_MONOTONIC. A section is logged after every check that says it is
still ours, and once more, with valid=0, after the check that says it is
not: a holding taken away ends there, not at its last good check. Every
check is also logged as a `check` line (`at` taken before the call). With
`--once 1` the worker keeps the lock (renewing it) or its mastership until
it is killed or stopped.

SIGTERM or SIGINT ends the worker cleanly (releasing what it holds).
"""

import argparse
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone

import pymongo
from mongoelector import AcquireTimeout, MongoLeaderElector, MongoLocker, TimeOffsetError

STOP = threading.Event()


def mono_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def deadline_ns(ts_expire):
    """A client-time expiry (a datetime) as CLOCK_MONOTONIC nanoseconds."""
    if ts_expire is None:
        return mono_ns()
    if ts_expire.tzinfo is None:
        ts_expire = ts_expire.replace(tzinfo=timezone.utc)
    left = (ts_expire - datetime.now(tz=timezone.utc)).total_seconds()
    return mono_ns() + int(left * 1e9)


class Log:
    def __init__(self, path, name, key):
        self.file = open(path, "a", buffering=1)
        self.name = name
        self.key = key

    def section(self, kind, start, end, deadline, valid):
        self.file.write(
            f"section kind={kind} w={self.name} key={self.key} fence=0 start={start} "
            f"end={end} deadline={deadline} valid={int(valid)}\n"
        )

    def check(self, kind, at, deadline, valid):
        self.file.write(
            f"check w={self.name} key={self.key} kind={kind} fence=0 at={at} "
            f"deadline={deadline} valid={int(valid)}\n"
        )

    def error(self, kind, msg):
        msg = str(msg).replace("\n", " ")
        self.file.write(f"error w={self.name} key={self.key} kind={kind} msg={msg}\n")


def hold(log, kind, start, is_mine, expiry, args):
    """Acts `args.acts` times `args.hold` apart (for ever with --once),
    checking ownership before each. Logs the section after every check,
    so a SIGKILLed holder's section is known up to its last check, and a
    holding taken away ends at the check that found it gone."""
    acts = 0
    while not STOP.is_set():
        at = mono_ns()
        valid = is_mine()
        end = mono_ns()
        deadline = deadline_ns(expiry())
        log.check(kind, at, deadline, valid)
        # A failed check ends the section where the holder learned it.
        log.section(kind, start, end, deadline, valid)
        if not valid:
            return
        acts += 1
        if not args.once and acts >= args.acts:
            return
        STOP.wait(args.hold)


def run_lock(db, log, args):
    locker = MongoLocker(args.key, db, ttl=args.ttl)
    while not STOP.is_set():
        try:
            locker.acquire(blocking=True, timeout=0.5, step=args.step)
        except AcquireTimeout:
            continue
        except TimeOffsetError as e:
            # Its clock check compares the server's time with ours without
            # allowing for the round trip, which a loaded machine can make
            # longer than its 0.5 s limit; the elector retries the same way.
            print(f"worker.py {args.name}: {e}; retrying", file=sys.stderr)
            STOP.wait(args.step)
            continue
        start = mono_ns()
        if args.once:
            # Renew at a third of the ttl, as a long job would.
            def renew():
                while not STOP.wait(args.ttl / 3):
                    locker.touch()

            threading.Thread(target=renew, daemon=True).start()
        hold(log, "lock", start, locker.owned, lambda: locker.ts_expire, args)
        locker.release()
        if args.once:
            return
        STOP.wait(args.step)  # let the others in


def run_elector(db, log, args):
    became = threading.Event()
    elector = MongoLeaderElector(args.key, db, ttl=args.ttl, on_leader=became.set)
    elector.start()
    while not STOP.is_set():
        if not became.wait(0.05):
            continue
        became.clear()
        start = mono_ns()
        hold(log, "master", start, lambda: elector.is_leader, lambda: elector.mlock.ts_expire, args)
        if args.once:
            break
        elector.release()  # end the term on purpose, so terms change hands
    elector.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["lock", "elector"], required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--ttl", type=float, default=2.0)
    p.add_argument("--step", type=float, default=0.05)
    p.add_argument("--hold", type=float, default=0.1)
    p.add_argument("--acts", type=int, default=3)
    p.add_argument("--once", type=int, default=0)
    args = p.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    client = pymongo.MongoClient(os.environ["MONGODB_URI"], w="majority")
    log = Log(args.log, args.name, args.key)
    try:
        (run_lock if args.mode == "lock" else run_elector)(client[args.db], log, args)
    except Exception as e:
        # In the history, so that the test fails naming it.
        log.error(type(e).__name__, e)
        raise


if __name__ == "__main__":
    main()
