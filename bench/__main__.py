"""``python -m bench [--scenarios A,B,C,D,E,F,L,T] [--scale 1.0]``: issue 5's benchmark (and L:
the management API's delivery-log index, :mod:`bench.logindex`; T: what tracing costs,
:mod:`bench.tracing`).

Starts the dev broker, runs each chosen scenario against real worker processes and real
receivers on 127.0.0.1, prints a table with PASS/MISS per target and writes
``bench/results.json`` with the machine it ran on. ``--scale 0.1`` runs every scenario with a
tenth of the events, for development; the targets are meant for ``--scale 1``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import orjson

from bench.broker import local_broker
from bench.logindex import scenario_l
from bench.report import machine, notes, rows, table
from bench.scenarios import Run, scenario_a, scenario_b, scenario_c, scenario_d, scenario_f
from bench.table import scenario_e_isolated
from bench.tracing import scenario_t

HERE = Path(__file__).resolve().parent
ORDER = "ABCDEFLT"
WITH_BROKER = {
    "A": scenario_a,
    "B": scenario_b,
    "C": scenario_c,
    "D": scenario_d,
    "F": scenario_f,
    "L": scenario_l,
    "T": scenario_t,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(ORDER), help="e.g. A,B (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full events")
    parser.add_argument(
        "--receiver",
        choices=("auto", "nginx", "aiohttp"),
        default="auto",
        help="instant receiver of A (auto: nginx when installed)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="directory: sample the worker of A, B and C with py-spy, report hot spots",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="event loop of the worker and of the raw ceiling (default: the worker's default)",
    )
    parser.add_argument(
        "--roles",
        choices=("all", "split"),
        default="all",
        help="A-C's worker: one process (all) or a router and a dispatcher process (split)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["WEBHOOK_EVENT_LOOP"] = args.loop  # read by bench.rig for every worker
    os.environ["BENCH_WORKER_ROLES"] = args.roles  # likewise
    chosen = [s for s in ORDER if s in {c.strip().upper() for c in args.scenarios.split(",")}]
    results: dict[str, Any] = {
        "machine": machine(),
        "args": {
            "scenarios": chosen,
            "scale": args.scale,
            "receiver": args.receiver,
            "loop": args.loop,
            "roles": args.roles,
        },
        "scenarios": {},
    }
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = Run("", args.scale, args.receiver, args.profile, results["scenarios"])
    for name in chosen:
        if name == "E":
            subs, workspaces = run.scaled(100_000, 1_000), run.scaled(10_000, 100)
            run.results["E"] = scenario_e_isolated(subs, workspaces)
        else:
            # A fresh broker per scenario: Tansu keeps every record in memory and its CPU per
            # request grows with what it holds (D's broker went from 0.5 to 1.3 cores at
            # 200 events/s after A-C), so one scenario's data would slow the next one down.
            with local_broker() as broker:
                run.bootstrap = broker.bootstrap
                run.results[name] = WITH_BROKER[name](run)
        print(name, orjson.dumps(run.results[name]).decode(), flush=True)
    results["seconds"] = round(time.monotonic() - started)
    results["checks"] = [
        {"scenario": s, "measured": m, "against": a, "target": t, "pass": ok}
        for s, m, a, t, ok in rows(results["scenarios"])
    ]
    results["notes"] = notes(results["scenarios"])
    args.output.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    if args.scale != 1.0:
        print(f"\n--scale {args.scale}: targets are for the full scale")
    print()
    print(table(rows(results["scenarios"])))
    print()
    print("\n".join(results["notes"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
