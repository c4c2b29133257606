"""Run the firepbt CLI and SIGKILL it at a chosen moment (tests of ``firepbt resume``).

``KILL_ON=event|fsync|replace|write`` and ``KILL_AT=k``: the process kills itself
with SIGKILL right after its k-th journal write, before its k-th fsync, before its k-th
rename, or halfway through its k-th checkpoint file write. Usage::

    python killer.py run CONFIG --out DIR
"""

import os
import signal
import sys

import firepbt.runner.checkpoint
import firepbt.runner.journal
from firepbt.cli import main

KIND = os.environ.get("KILL_ON", "event")
AT = int(os.environ.get("KILL_AT", "0"))
count = 0


def tick() -> bool:
    global count
    count += 1
    return count == AT


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if KIND == "event":
    write = firepbt.runner.journal.Journal.write

    def journal_write(self, event):
        write(self, event)
        if tick():
            die()

    firepbt.runner.journal.Journal.write = journal_write
elif KIND == "fsync":
    fsync = os.fsync

    def killing_fsync(fd):
        if tick():
            die()
        fsync(fd)

    os.fsync = killing_fsync
elif KIND == "replace":
    replace = os.replace

    def killing_replace(a, b):
        if tick():
            die()
        replace(a, b)

    os.replace = killing_replace
elif KIND == "write":
    atomic = firepbt.runner.checkpoint.atomic_write

    def torn_write(path, data, **kw):
        if tick():  # a torn temporary file, as a kill in the middle of write() leaves
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data[: len(data) // 2])
            die()
        atomic(path, data, **kw)

    firepbt.runner.checkpoint.atomic_write = torn_write

sys.exit(main(sys.argv[1:]))
