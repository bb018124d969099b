#!/usr/bin/env python3
"""
The gateway's CPU time per short SOCKS5 CONNECT session.

    python benchmarks/sessioncpu.py [--sessions N] [--concurrency C] [--profile FILE]

Run it with the Python of the environment socksgate is installed in: the
gateway is started as C{twistd -n --pidfile= socksgate -l
tcp:PORT:interface=127.0.0.1} (the C{twistd} beside that Python), pinned to
core 0, writing twistd's text log to a file as an administrator's gateway
does.  The load generator (benchmarks/loadgen.c, built into a temporary
directory) runs N sessions (greeting, CONNECT to its echo server, 100 bytes
echoed, close), C in flight, pinned to core 1, after a warm-up of N / 10.

The figure is the gateway process's CPU time (user and system, from
C{/proc/PID/stat}) over the N sessions, divided by N: it does not depend on
how fast the machine is as much as a rate does, and it is what the lean
session path reduces.  With C{--profile FILE}, py-spy (if installed)
records the gateway during the run into FILE (a flame graph, SVG).
Everything is on 127.0.0.1 and bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The helpers of the main benchmark (this directory is on sys.path when a
# script of it runs).
from run import cpuSeconds, freePort, waitForPort  # noqa: E402

HERE = Path(__file__).resolve().parent


def runSessions(loadgen: Path, port: int, echoPort: int, count: int, concurrency: int) -> dict[str, object]:
    """
    Run C{count} sessions through the gateway; the load generator's figures.
    """
    result = subprocess.run(
        ["taskset", "-c", "1", str(loadgen), "sessions", f"socks5:{port}", str(echoPort), str(count),
         str(concurrency), "120"],
        capture_output=True, text=True, timeout=150, check=True,
    )  # fmt: skip
    merged: dict[str, object] = {}
    for line in result.stdout.splitlines():
        merged.update(json.loads(line))
    return merged


def main() -> int:
    """
    Measure, print the figures as one JSON object.
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--twistd", default=str(Path(sys.executable).with_name("twistd")))
    parser.add_argument("--profile", default="", help="record the gateway with py-spy into this SVG")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="socksgate-sessioncpu-") as tmp:
        work = Path(tmp)
        loadgen = work / "loadgen"
        compiler = os.environ.get("CC") or shutil.which("gcc") or "cc"
        subprocess.run(
            [compiler, "-O2", "-std=gnu11", "-o", str(loadgen), str(HERE / "loadgen.c")], check=True
        )
        dest = subprocess.Popen(
            ["taskset", "-c", "1", str(loadgen), "dest", "300"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        gateway = None
        try:
            echoPort = int(dest.stdout.readline().split()[0])  # type: ignore[union-attr]
            port = freePort()
            logFile = work / "twistd.log"
            gateway = subprocess.Popen(
                ["taskset", "-c", "0", args.twistd, "-n", "--pidfile=", f"--logfile={logFile}", "socksgate",
                 "-l", f"tcp:{port}:interface=127.0.0.1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work,
            )  # fmt: skip
            waitForPort(port, gateway)
            runSessions(loadgen, port, echoPort, max(1, args.sessions // 10), args.concurrency)
            spy = None
            if args.profile and shutil.which("py-spy"):
                spy = subprocess.Popen(
                    ["py-spy", "record", "--pid", str(gateway.pid), "--output", args.profile,
                     "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1.0)
            before = cpuSeconds(gateway.pid)
            figures = runSessions(loadgen, port, echoPort, args.sessions, args.concurrency)
            used = cpuSeconds(gateway.pid) - before
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            logLines = len(logFile.read_text(errors="replace").splitlines())
        finally:
            if gateway is not None and gateway.poll() is None:
                gateway.send_signal(signal.SIGTERM)
                gateway.wait(30)
            dest.stdin.close()  # type: ignore[union-attr]
            dest.wait(10)
    completed = int(figures.get("completed", 0))  # type: ignore[call-overload]
    print(
        json.dumps(
            {
                "sessions": completed,
                "failed": figures.get("failed"),
                "gateway_cpu_s": round(used, 3),
                "cpu_us_per_session": round(used / max(1, completed) * 1e6, 1),
                "sessions_per_s": figures.get("per_s"),
                "text_log_lines": logLines,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
