"""
How fast C{socksgate stats} summarises a large access log, and in how much
memory.

    python benchmarks/stats.py [--records N] [--scenarios typical,gzip,distinct]

Each scenario writes a synthetic session log of N records (default one
million, about 420 bytes each) into a temporary directory, then summarises
it in a child process (so that its peak memory is the summary's alone) and
prints records per second, megabytes per second and the child's peak
resident memory (C{ru_maxrss}) beside its memory once Python and the module
are loaded.  The temporary directory is removed at the end.

Scenarios:

  - C{typical}: 5,000 clients, 500 users, 2,000 destinations (within the
    counters' capacity: every figure exact);
  - C{gzip}: the same log gzip'd (as logrotate's C{compress} leaves it);
  - C{distinct}: a new client and a new destination for every record
    (the worst case for the bounded counters: keys are replaced all the
    time).

Run it with the Python of the environment socksgate is installed in.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

#: What the child process runs: summarise the log and say how it went.
CHILD = """
import json, resource, sys, time
from socksgate.scripts import stats
def highWater():
    # VmHWM: the peak resident memory of this program alone (ru_maxrss
    # survives exec, so it could include the parent's).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
summary = stats.summariseFiles(sys.argv[1:])
report = summary.asDict()
stats.renderText(report)
stats.renderHTML(report)
elapsed = time.perf_counter() - start
print(json.dumps({
    "records": summary.records,
    "malformed": summary.malformed,
    "seconds": elapsed,
    "baseline_kib": baseline,
    "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "vmhwm_kib": highWater(),
    "clients_tracked": report["clients"]["tracked"],
    "clients_exact": report["clients"]["exact"],
    "destinations_tracked": report["destinations"]["tracked"],
}))
"""

OUTCOMES = ["closed"] * 80 + ["denied"] * 12 + ["failed"] * 5 + ["error"] * 2 + ["timeout"]
REPLIES = {"closed": 0, "denied": 2, "failed": 5, "error": 1, "timeout": 6}


def generate(path: str, records: int, distinct: bool, seed: int = 1) -> int:
    """
    Write a synthetic session log of C{records} records to C{path}, spread
    over a week.

    @param distinct: give every record a client and a destination of its
        own.
    @return: the file's size in bytes.
    """
    chance = random.Random(seed)
    users = [f"user{index:03d}" for index in range(500)] + [None] * 100
    clients = [f"10.{index // 65536}.{index // 256 % 256}.{index % 256}" for index in range(5000)]
    destinations = [f"www.site{index}.example.com:{chance.choice((80, 443))}" for index in range(2000)]
    start = datetime(2026, 11, 14, tzinfo=UTC)
    step = timedelta(days=7) / records
    with open(path, "w", encoding="utf-8") as stream:
        lines = []
        for index in range(records):
            moment = start + step * index
            outcome = chance.choice(OUTCOMES)
            user = chance.choice(users)
            if distinct:
                client = f"{index >> 24 & 255}.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"
                destination = f"host{index}.example.net:443"
            else:
                client = chance.choice(clients)
                destination = chance.choice(destinations)
            granted = outcome == "closed"
            record = {
                "time": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                "session": f"{chance.getrandbits(32):08x}",
                "listener": "tcp:1080:interface=0.0.0.0",
                "client": f"{client}:{chance.randrange(1024, 65536)}",
                "version": "5",
                "auth": "userpass" if user else "none",
                "user": user,
                "ident": None,
                "command": "connect",
                "destination": destination,
                "remote": "93.184.215.14:443" if granted else None,
                "outcome": outcome,
                "reply": REPLIES[outcome],
                "rule": chance.randrange(1, 12),
                "message": "no social networks" if outcome == "denied" else "",
                "bytes_out": chance.randrange(100, 20_000) if granted else 0,
                "bytes_in": chance.randrange(1000, 5_000_000) if granted else 0,
                "duration": round(chance.random() * 30, 3),
            }
            lines.append(json.dumps(record))
            if len(lines) == 10_000:
                stream.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            stream.write("\n".join(lines) + "\n")
    return os.path.getsize(path)


def generateApart(path: str, records: int, distinct: bool) -> int:
    """
    L{generate} in a child process, which keeps this one small: a child
    starts with its parent's peak memory as its own C{ru_maxrss}.
    """
    arguments = [sys.executable, __file__, "--generate", path, "--records", str(records)]
    if distinct:
        arguments.append("--distinct")
    subprocess.run(arguments, check=True, timeout=3600)
    return os.path.getsize(path)


def summarise(path: str) -> dict[str, float]:
    """
    Summarise C{path} in a child process; return its figures.
    """
    result = subprocess.run(
        [sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True, timeout=3600
    )
    return json.loads(result.stdout)


def main() -> None:
    """
    Generate, summarise, print.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="records in each log (default 1,000,000)"
    )
    parser.add_argument(
        "--scenarios", default="typical,gzip,distinct", help="a subset of typical,gzip,distinct"
    )
    parser.add_argument("--generate", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--distinct", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.generate:
        generate(arguments.generate, arguments.records, arguments.distinct)
        return
    scenarios = arguments.scenarios.split(",")
    directory = tempfile.mkdtemp(prefix="socksgate-stats-bench-")
    rows = []
    try:
        plain = os.path.join(directory, "access.log")
        if {"typical", "gzip"} & set(scenarios):
            size = generateApart(plain, arguments.records, distinct=False)
        for scenario in scenarios:
            if scenario == "typical":
                path = plain
            elif scenario == "gzip":
                path = plain + ".1"
                with open(plain, "rb") as source, gzip.open(path, "wb", compresslevel=6) as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            elif scenario == "distinct":
                path = os.path.join(directory, "distinct.log")
                size = generateApart(path, arguments.records, distinct=True)
            else:
                parser.error(f"unknown scenario {scenario!r}")
            figures = summarise(path)
            assert figures["records"] == arguments.records and figures["malformed"] == 0, figures
            rows.append((scenario, size, os.path.getsize(path), figures))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores,"
        f" {platform.system()} {platform.release()}, {time.strftime('%Y-%m-%d')}"
    )
    print()
    print(
        "| log | records | size (file) | seconds | records/s | MB/s (uncompressed)"
        " | peak RSS (ru_maxrss) | RSS at start | peak RSS (VmHWM) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario, size, fileSize, figures in rows:
        seconds = figures["seconds"]
        print(
            f"| {scenario} | {figures['records']:,} | {size / 1e6:.0f} MB ({fileSize / 1e6:.0f} MB)"
            f" | {seconds:.1f} | {figures['records'] / seconds:,.0f} | {size / 1e6 / seconds:.1f}"
            f" | {figures['peak_kib'] / 1024:.1f} MiB | {figures['baseline_kib'] / 1024:.1f} MiB"
            f" | {(figures['vmhwm_kib'] or 0) / 1024:.1f} MiB |"
        )
    for scenario, _, _, figures in rows:
        print(
            f"{scenario}: clients tracked {figures['clients_tracked']:,}"
            f" ({'exact' if figures['clients_exact'] else 'estimated'}),"
            f" destinations tracked {figures['destinations_tracked']:,}"
        )


if __name__ == "__main__":
    main()
