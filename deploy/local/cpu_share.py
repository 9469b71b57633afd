#!/usr/bin/env python3
"""CPU time per component over a window: `cpu_share.py SECONDS`.

Reads /proc/<pid>/stat (user + system ticks) of every process at the start
and the end of the window and groups them: our binaries by name, PostgreSQL
backends by database, RabbitMQ as one. Prints a Markdown table, busiest
first. Used by `make bench` during the chat run.
"""
import collections
import os
import re
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def snapshot():
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of stat; 12 and 13 after ")".
        out[pid] = (int(fields[11]) + int(fields[12]), args)
    return out


def component(args):
    backend = re.match(r"postgres: (?:\S+: )?\S+ (\S+) ", args)
    if backend:
        return f"PostgreSQL ({backend.group(1)})"
    if args.startswith("postgres"):
        return "PostgreSQL (background)"
    if "beam.smp" in args:
        return "RabbitMQ"
    name = os.path.basename(args.split(" ", 1)[0]) if args else ""
    return name or "kernel threads"


def main():
    seconds = float(sys.argv[1])
    before = snapshot()
    time.sleep(seconds)
    after = snapshot()
    used = collections.Counter()
    for pid, (ticks, args) in after.items():
        delta = ticks - before.get(pid, (0, ""))[0]
        if delta > 0:
            used[component(args)] += delta
    total = sum(used.values()) or 1
    print("| component | CPU s | share |")
    print("|---|---|---|")
    for name, ticks in used.most_common(10):
        print(f"| {name} | {ticks / TICK:.2f} | {100 * ticks / total:.0f}% |")


if __name__ == "__main__":
    main()
