#!/usr/bin/env python3
"""CPU time per component over a window: `cpu_share.py [--json] [--after FILE] SECONDS`.

Reads /proc/<pid>/stat (user + system ticks) of every process at the start
and the end of the window and groups them: our binaries by name, PostgreSQL
backends by database, RabbitMQ as one. Prints a Markdown table, busiest
first, or with --json one object: the window's wall seconds and every
component's CPU seconds. With --after, the window starts once FILE exists
(`loadgen --mark FILE` creates it when its measured window begins). Used by
`make bench` and `make bench-compare` (deploy/local/bench_lib.sh) during the
chat runs.
"""
import argparse
import collections
import json
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


def wait_for(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit(f"cpu_share.py: {path} did not appear within {timeout:.0f} s")
        time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser(description="CPU time per component over a window")
    parser.add_argument("seconds", type=float, help="length of the window")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument("--after", metavar="FILE", help="start the window once FILE exists")
    parser.add_argument("--timeout", type=float, default=900, help="most seconds to wait for --after's FILE")
    args = parser.parse_args()
    if args.after:
        wait_for(args.after, args.timeout)
    started = time.monotonic()
    before = snapshot()
    time.sleep(args.seconds)
    after = snapshot()
    wall = time.monotonic() - started
    used = collections.Counter()
    for pid, (ticks, cmd) in after.items():
        delta = ticks - before.get(pid, (0, ""))[0]
        if delta > 0:
            used[component(cmd)] += delta
    if args.json:
        print(json.dumps({
            "seconds": round(wall, 3),
            "cpu_s": {name: ticks / TICK for name, ticks in used.most_common()},
        }))
        return
    total = sum(used.values()) or 1
    print("| component | CPU s | share |")
    print("|---|---|---|")
    for name, ticks in used.most_common(10):
        print(f"| {name} | {ticks / TICK:.2f} | {100 * ticks / total:.0f}% |")


if __name__ == "__main__":
    main()
