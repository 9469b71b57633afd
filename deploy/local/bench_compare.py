#!/usr/bin/env python3
"""The A/B table of `make bench-compare` (deploy/local/bench_compare.sh).

`bench_compare.py RUN_DIR --ref-label L --tree-label L --light C --saturation C --db-prefix P`
reads RUN_DIR/ref and RUN_DIR/tree, each as deploy/local/bench_lib.sh's
bench_chat_loads left it (chat.jsonl: loadgen's JSON lines, or
{"scenario", "concurrency", "absent": why} for a run loadgen could not do;
cpu-<scenario>-<saturation>.json: cpu_share.py --json over loadgen's window;
rss.json: the services' VmRSS/VmHWM after the saturation round) plus
events.json (bench_compare.sh: the queues' backlog after the loads and the
seconds until they were empty), and prints the Markdown comparison: ref,
tree and tree/ref.
"""
import argparse
import json
import pathlib
import statistics

PATHS = [("chat", "chat API"), ("openai", "OpenAI-compatible /v1")]
SERVICES = ["gateway", "identity", "chat", "billing", "analytics"]
DATABASES = ["identity", "chat", "billing", "analytics"]
ABSENT = "absent"


def load_one(side_dir, saturation):
    side = {"runs": {}, "cpu": {}, "rss": None, "events": None}
    for line in (side_dir / "chat.jsonl").read_text().splitlines():
        if line.strip():
            run = json.loads(line)
            side["runs"][(run["scenario"], int(run["concurrency"]))] = run
    for scenario, _ in PATHS:
        path = side_dir / f"cpu-{scenario}-{saturation}.json"
        if path.exists() and path.stat().st_size:
            side["cpu"][scenario] = json.loads(path.read_text())
    for key, name in (("rss", "rss.json"), ("events", "events.json")):
        path = side_dir / name
        if path.exists() and path.stat().st_size:
            side[key] = json.loads(path.read_text())
    return side


def load(run_dir, name, saturation):
    """A side's rounds (<name>, <name>.2, ...): each run's numbers are the
    median over the rounds, errors their sum; memory and the events' backlog
    are the last round's."""
    dirs = [run_dir / name] + sorted(run_dir.glob(f"{name}.*"), key=lambda d: int(d.suffix[1:]))
    rounds = [load_one(d, saturation) for d in dirs if (d / "chat.jsonl").exists()]
    side = {"rounds": rounds, "runs": {}, "rss": rounds[-1]["rss"], "events": rounds[-1]["events"]}
    for key in rounds[0]["runs"]:
        runs = [r["runs"][key] for r in rounds if key in r["runs"]]
        if any("absent" in r for r in runs):
            side["runs"][key] = next(r for r in runs if "absent" in r)
            continue
        merged = dict(runs[0])
        for field, value in runs[0].items():
            if isinstance(value, (int, float)) and field not in ("concurrency", "seconds"):
                merged[field] = statistics.median(r[field] for r in runs)
        merged["errors"] = sum(r.get("errors", 0) for r in runs)
        side["runs"][key] = merged
    return side


def run(side, scenario, concurrency):
    r = side["runs"].get((scenario, concurrency))
    return None if r is None or "absent" in r else r


def ratio(ref, tree):
    if ref is None or tree is None or ref <= 0 or tree < 0:
        return "—"
    return f"{tree / ref:.2f}"


def fmt(value, spec, unit=""):
    return ABSENT if value is None else f"{value:{spec}}{unit}"


def row(label, ref, tree, spec, unit=""):
    return f"| {label} | {fmt(ref, spec, unit)} | {fmt(tree, spec, unit)} | {ratio(ref, tree)} |"


def cpu_per_message(side, scenario, saturation, prefix):
    """ms of CPU per completed message, by component, over loadgen's window;
    the median over the side's rounds."""
    known = {name: name for name in SERVICES + ["loadgen", "mockllm"]}
    known.update({f"PostgreSQL ({prefix}{db})": f"PostgreSQL ({db})" for db in DATABASES})
    for name in ("PostgreSQL (background)", "RabbitMQ", "kernel threads"):
        known[name] = name
    per_round = []
    for one in side["rounds"]:
        cpu, r = one["cpu"].get(scenario), run(one, scenario, saturation)
        if cpu is None or r is None or not r["requests"]:
            continue
        out = {}
        for name, seconds in cpu["cpu_s"].items():
            label = known.get(name, "other processes")
            out[label] = out.get(label, 0.0) + 1000 * seconds / r["requests"]
        per_round.append(out)
    if not per_round:
        return None
    labels = {label for out in per_round for label in out}
    return {label: statistics.median(out.get(label, 0.0) for out in per_round) for label in labels}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=pathlib.Path)
    parser.add_argument("--ref-label", required=True)
    parser.add_argument("--tree-label", required=True)
    parser.add_argument("--light", type=int, required=True)
    parser.add_argument("--saturation", type=int, required=True)
    parser.add_argument("--db-prefix", required=True)
    args = parser.parse_args()
    sat, light = args.saturation, args.light
    ref, tree = load(args.run_dir, "ref", sat), load(args.run_dir, "tree", sat)
    sides = (ref, tree)
    head = f"| | ref {args.ref_label} | tree {args.tree_label} | tree/ref |\n|---|---|---|---|"
    out = []

    out.append(f"Throughput at saturation (concurrency {sat}) and the platform's latency at light load "
               f"(concurrency {light}: the path's time minus the same request's straight to the mock):")
    out.append("")
    out.append(head)
    for scenario, name in PATHS:
        out.append(row(f"{name}: metered messages/s at {sat}",
                       *[(run(s, scenario, sat) or {}).get("rps") for s in sides], ".0f"))
    out.append(row(f"straight to the mock (loadgen and mock alone): messages/s at {sat}",
                   *[(run(s, "direct", sat) or {}).get("rps") for s in sides], ".0f"))
    for scenario, name in PATHS:
        for what, key in (("TTFT", "ttft_"), ("total", "")):
            for p in ("p50", "p99"):
                values = []
                for s in sides:
                    r, d = run(s, scenario, light), run(s, "direct", light)
                    values.append(None if r is None or d is None else r[f"{key}{p}_ms"] - d[f"{key}{p}_ms"])
                out.append(row(f"{name}: {what} overhead {p} at {light}", *values, "+.2f", " ms"))
    errors = [sum(r.get("errors", 0) for r in s["runs"].values() if "absent" not in r) for s in sides]
    out.append(row("errors, all runs", *errors, "d"))
    out.append("")

    out.append(f"CPU per metered message at concurrency {sat}, ms: each component's CPU time (/proc) over "
               "loadgen's measured window divided by the messages completed in it. \"platform\" is the "
               "services, their databases, PostgreSQL's background processes and RabbitMQ; \"other "
               "processes\" is whatever else ran on the machine. The mock provider does the same work per message "
               "on both sides (the load generator less so: its cost moves with the replies' pace): when the "
               "mock's CPU per message differs, the machine's speed moved between the sides (a VM's cores do), "
               "and \"platform ÷ mockllm\" is the platform's cost in units of the mock's:")
    out.append("")
    per = {(i, scenario): cpu_per_message(s, scenario, sat, args.db_prefix)
           for i, s in enumerate(sides) for scenario, _ in PATHS}
    header = "| component |" + "".join(f" {name}: ref | tree | tree/ref |" for _, name in PATHS)
    out.append(header)
    out.append("|---|" + "---|---|---|" * len(PATHS))
    platform = SERVICES + [f"PostgreSQL ({db})" for db in DATABASES] + ["PostgreSQL (background)", "RabbitMQ"]
    rows = platform + ["platform", "kernel threads", "loadgen", "mockllm", "other processes", "all",
                       "platform ÷ mockllm"]
    for label in rows:
        cells = []
        for scenario, _ in PATHS:
            values = []
            for i in range(2):
                m = per[(i, scenario)]
                if m is None:
                    values.append(None)
                elif label == "platform":
                    values.append(sum(m.get(k, 0.0) for k in platform))
                elif label.startswith("platform ÷"):
                    mock = m.get("mockllm", 0.0)
                    values.append(sum(m.get(k, 0.0) for k in platform) / mock if mock else None)
                elif label == "all":
                    values.append(sum(m.values()))
                elif label == "analytics" and sides[i]["rss"] is not None and "analytics" not in sides[i]["rss"]:
                    values.append(None)
                else:
                    values.append(m.get(label, 0.0))
            cells.append(f" {fmt(values[0], '.3f')} | {fmt(values[1], '.3f')} | {ratio(*values)} |")
        bold = label in ("platform", "all")
        out.append(f"| {'**' + label + '**' if bold else label} |" + "".join(cells))
    out.append("")

    out.append(f"Resident memory after the saturation round (concurrency {sat}), MiB: VmRSS then, and "
               "VmHWM (the process's peak):")
    out.append("")
    out.append(f"| service | RSS ref | RSS tree | tree/ref | peak ref | peak tree | tree/ref |")
    out.append("|---|---|---|---|---|---|---|")
    four = ["identity", "gateway", "chat", "billing"]
    for label in four + ["the four together", "analytics"]:
        cells = []
        for key in ("VmRSS", "VmHWM"):
            values = []
            for s in sides:
                rss = s["rss"]
                if rss is None:
                    values.append(None)
                elif label == "the four together":
                    values.append(sum(rss[n][key] for n in four if n in rss) / 1024)
                else:
                    values.append(rss[label][key] / 1024 if label in rss else None)
            cells.append(f" {fmt(values[0], '.0f')} | {fmt(values[1], '.0f')} | {ratio(*values)} |")
        out.append(f"| {label} |" + "".join(cells))
    out.append("")

    out.append("The events' consumers after the last run: messages left in each queue when the load "
               "stopped, and seconds until the consumers' queues (billing, analytics, chat, identity) were empty:")
    out.append("")
    out.append(head)
    for queue in ("billing", "analytics"):
        values = []
        for s in sides:
            ev = s["events"]
            values.append(None if ev is None or queue not in ev["backlog"] else ev["backlog"][queue])
        out.append(row(f"{queue}'{'' if queue.endswith('s') else 's'} queue: backlog", *values, "d"))
    values = [None if s["events"] is None or not s["events"]["backlog"]
              else sum(n for q, n in s["events"]["backlog"].items() if q.endswith(".dlq")) for s in sides]
    out.append(row("dead letters (every .dlq queue)", *values, "d"))
    values = [None if s["events"] is None or s["events"]["drain_s"] is None else s["events"]["drain_s"] for s in sides]
    out.append(row("seconds until empty", *values, ".1f"))
    out.append("")

    out.append("Every run:")
    out.append("")
    out.append("| side | concurrency | path | messages/s | TTFT p50 ms | TTFT p99 ms | total p50 ms | total p99 ms | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    names = {"direct": "straight to the mock", **dict(PATHS)}
    notes = []
    for label, s in (("ref", ref), ("tree", tree)):
        order = {"direct": 0, "chat": 1, "openai": 2}
        for (scenario, c), r in sorted(s["runs"].items(), key=lambda kv: (kv[0][1], order[kv[0][0]])):
            if "absent" in r:
                out.append(f"| {label} | {c} | {names[scenario]} | absent | | | | | |")
                notes.append(f"- {label}, {names[scenario]} at {c}: {r['absent'] or 'loadgen failed'}")
                continue
            out.append(f"| {label} | {c} | {names[scenario]} | {r['rps']:.0f} | {r['ttft_p50_ms']:.2f} | "
                       f"{r['ttft_p99_ms']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |")
    if notes:
        out.append("")
        out.append("Absent runs (loadgen's last word):")
        out.append("")
        out.extend(notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
