"""Client CPU per acquire+release cycle of the Python package `mongoelector`
(its MongoLocker, default settings), for scripts/python-cpu.sh, which runs
it side by side with this crate's `benches/cycle_cpu.rs`.

    MONGODB_URI=... python cycle_cpu.py [CYCLES]

Prints one line: `python <cycles> <client CPU per cycle, µs> <wall per
cycle, µs>`. CPU is user + sys of the whole process (pymongo's threads
included), from getrusage, over the measured cycles only (after a warm-up).
"""

import os
import resource
import sys
import time
import uuid

import pymongo
from mongoelector import MongoLocker


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def main():
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    client = pymongo.MongoClient(os.environ["MONGODB_URI"])
    db = client["cpu_" + uuid.uuid4().hex]
    locker = MongoLocker("cpu", db)
    for _ in range(50):  # warm-up: connection pool, clock check, index
        assert locker.acquire(blocking=False)
        locker.release()
    c0, t0 = cpu(), time.monotonic()
    for _ in range(cycles):
        assert locker.acquire(blocking=False)
        locker.release()
    c1, t1 = cpu(), time.monotonic()
    client.drop_database(db.name)
    print(f"python {cycles} {(c1 - c0) / cycles * 1e6:.1f} {(t1 - t0) / cycles * 1e6:.1f}")


if __name__ == "__main__":
    main()
