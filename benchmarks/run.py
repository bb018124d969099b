#!/usr/bin/env python3
"""
Benchmarks of socksgate against a direct loopback connection, and (for
comparison) Twisted's built-in SOCKS4 server and Dante when present.

    python benchmarks/run.py [--quick]

Run it with the Python of the environment socksgate is installed in: the
gateway is started as ``twistd`` from beside that Python.  See
docs/benchmarks.md for what each figure means.

The load generator and the destination servers are C programs
(benchmarks/loadgen.c), built here with the machine's C compiler into a
temporary directory, and pinned to core 1; the server under test is pinned
to core 0.  Everything runs on 127.0.0.1, and every load is bounded both in
count and in time.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GATEWAY_CORE = "0"
LOADGEN_CORE = "1"
#: The cores of the unpinned C{--workers 2} run: all of them, shared by the
#: gateway's processes and the load generator.
BOTH_CORES = "0,1"
#: Parallel streams in the "32 streams" row.
PARALLEL_STREAMS = 32
MIB = 1 << 20

#: Figures from the issue, measured on the same 2-core machine with
#: another load generator: (stream ratio, 64-in-flight ratio, KiB per idle
#: session, slow-reader growth in MiB).
ISSUE_FIGURES = {
    "dante": (0.47, 0.24, 390.0, 0.1),
    "twisted": (0.24, 0.33, 2.4, 1.7 * 1024),
}

#: socksgate's bars (the data-plane issue): one stream at least
#: BAR_STREAM_OVER_DANTE times Dante's ratio and at least BAR_STREAM_DIRECT
#: of direct; 32 streams and 64 sessions in flight at least Dante's ratio.
BAR_STREAM_OVER_DANTE = 1.3
BAR_STREAM_DIRECT = 0.5
BAR_IDLE_KIB = 6.0
BAR_GROWTH_MIB = 1.0


@dataclass
class Settings:
    streamBytes: int
    streamRuns: int
    sessionSeconds: float
    warmupSeconds: float
    holdCount: int
    slowSeconds: float
    slowRate: int = MIB
    growthCapMiB: int = 2048
    #: At most this many sessions (plus an eighth for the warm-up) in each
    #: sessions measurement of Dante, and no second round of idle sessions:
    #: see L{Dante}.
    danteSessionCap: int = 3000


FULL = Settings(
    streamBytes=1 << 30, streamRuns=5, sessionSeconds=5, warmupSeconds=1, holdCount=5000, slowSeconds=20
)
QUICK = Settings(
    streamBytes=256 << 20, streamRuns=3, sessionSeconds=2, warmupSeconds=0.5, holdCount=5000, slowSeconds=6
)


# --------------------------------------------------------------------------
# Processes


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def waitForPort(port: int, process: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:g} s")


def stopProcess(process: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """
    End a process this script started (by its own id), politely first.
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def processTree(pid: int) -> list[int]:
    """
    C{pid} and all its descendants.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rssKiB(pid: int, tree: bool = False) -> int:
    """
    VmRSS of a process (summed over its descendants when C{tree}), in KiB.
    """
    total = 0
    for p in processTree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def coreTimes() -> dict[str, tuple[int, int]]:
    """
    (busy, total) jiffies of each core, from /proc/stat.
    """
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(v) for v in values]
                idle = numbers[3] + numbers[4]  # idle + iowait
                times[name[3:]] = (sum(numbers[:8]) - idle, sum(numbers[:8]))
    return times


def coreBusy(before: dict[str, tuple[int, int]]) -> dict[str, float]:
    """
    How busy each core was since C{before} (0 to 1).
    """
    after = coreTimes()
    return {
        core: round((after[core][0] - before[core][0]) / max(1, after[core][1] - before[core][1]), 3)
        for core in (GATEWAY_CORE, LOADGEN_CORE)
    }


def cpuSeconds(pid: int, tree: bool = False) -> float:
    """
    CPU time (user and system) of a process, or of its tree (with the
    children its processes have reaped), in seconds.
    """
    ticks = 0
    for p in processTree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
            if tree:
                ticks += int(fields[13]) + int(fields[14])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def foreignCpuTicks() -> dict[int, int]:
    """
    CPU ticks of every user-space process that this script did not start,
    with those of the children it has reaped: anything else that ran on the
    machine (a test suite...).
    """
    ours = set(processTree(os.getpid()))
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        # Kernel threads (children of kthreadd, pid 2) do our network work.
        if int(fields[1]) == 2 or int(entry) == 2:
            continue
        ticks[int(entry)] = sum(int(field) for field in fields[11:15])
    return ticks


class Probe:
    """
    What the cores and the server under test did during a measurement, and
    how much CPU other processes took meanwhile.
    """

    def __init__(self, server: Server | None) -> None:
        self.server = server
        self.cores = coreTimes()
        self.cpu = server.cpu() if server else 0.0
        self.foreign = foreignCpuTicks()
        self.start = time.monotonic()

    def finish(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.start
        hz = os.sysconf("SC_CLK_TCK")
        foreign = foreignCpuTicks()
        ticks = sum(t - self.foreign.get(pid, 0) for pid, t in foreign.items())
        result: dict[str, Any] = {
            "core_busy": coreBusy(self.cores),
            # In cores: 1.0 is one core's worth.
            "other_processes_cpu": round(ticks / hz / elapsed, 3),
        }
        if self.server:
            result["server_cpu"] = round((self.server.cpu() - self.cpu) / elapsed, 3)
        return result


def waitForQuiet(maxWait: float = 60.0) -> None:
    """
    Wait (a minute at most) for a second in which the machine is nearly
    idle: other work on either core makes the figures too low.
    """
    deadline = time.monotonic() + maxWait
    warned = False
    while True:
        before = coreTimes()
        time.sleep(1)
        busy = coreBusy(before)
        if max(busy.values()) < 0.15:
            return
        if time.monotonic() > deadline:
            log("warning: the machine is still busy: figures will be too low")
            return
        if not warned:
            log(f"waiting for the machine to be idle (cores busy: {busy})...")
            warned = True


def pssKiB(pid: int, tree: bool = False) -> int:
    """
    Proportional set size (shared pages divided among their users), in KiB.
    """
    total = 0
    for p in processTree(pid) if tree else [pid]:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def listenOverflows() -> int:
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(table.get("ListenOverflows", 0))
    return 0


def danteTimeWaitCount() -> int:
    """
    How many connections in TIME_WAIT have a local address in 127.1.0.0 -
    127.255.255.255: those a Dante of an earlier run bound (see L{Dante}).
    """
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split(None, 4)
            # The address is the hex of the bytes read as a little-endian
            # integer: 127.1.2.3 is 0302017F.
            if fields[3] == "06" and fields[1][6:8] == "7F" and fields[1][4:6] != "00":
                count += 1
    return count


def waitForDantePorts(limit: int = 2000, maxWait: float = 70.0) -> None:
    """
    Let the ports a Dante of an earlier run bound leave TIME_WAIT (a
    minute), since no connect() on the machine gets them until then.
    """
    deadline = time.monotonic() + maxWait
    count = danteTimeWaitCount()
    if count > limit:
        log(f"waiting for the {count} ports of an earlier run's Dante to leave TIME_WAIT...")
    while count > limit and time.monotonic() < deadline:
        time.sleep(2)
        count = danteTimeWaitCount()


class LoadGen:
    """
    The compiled load generator and the running destination servers.
    """

    #: The cores the load generator runs on.
    cores = LOADGEN_CORE

    def __init__(self, workdir: Path, maxSeconds: float) -> None:
        source = HERE / "loadgen.c"
        self.binary = workdir / "loadgen"
        compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
        if not compiler:
            raise SystemExit("benchmarks: a C compiler (gcc) is needed to build the load generator")
        subprocess.run(
            [compiler, "-O2", "-Wall", "-std=gnu11", "-o", str(self.binary), str(source)], check=True
        )
        self.dest = subprocess.Popen(
            self.pinned("dest", str(int(maxSeconds))),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ports = self.dest.stdout.readline().split()  # type: ignore[union-attr]
        if len(ports) != 3:
            raise RuntimeError("the destination servers did not start")
        self.echoPort, self.sourcePort, self.holdPort = map(int, ports)

    def pinned(self, *args: str) -> list[str]:
        return ["taskset", "-c", self.cores, str(self.binary), *args]

    def share(self, cores: str) -> None:
        """
        Run the load generator, and the destination servers already running,
        on C{cores} from now on.
        """
        self.cores = cores
        subprocess.run(
            ["taskset", "-a", "-p", "-c", cores, str(self.dest.pid)], capture_output=True, check=True
        )

    def run(self, *args: str, timeout: float) -> dict[str, Any]:
        """
        Run the load generator; its JSON output, as one dict.
        """
        result = subprocess.run(
            self.pinned(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0 or not result.stdout.strip():
            why = result.stderr.strip()
            if "Cannot assign requested address" in why:
                why += (
                    " (no ephemeral port left: too many connections in TIME_WAIT, as a previous run"
                    " leaves for a minute, Dante's for longer; wait a minute and run again)"
                )
            raise RuntimeError(f"loadgen {' '.join(args)} failed: {why}")
        merged: dict[str, Any] = {}
        for line in result.stdout.splitlines():
            merged.update(json.loads(line))
        return merged

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.pinned(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def close(self) -> None:
        if self.dest.poll() is None:
            self.dest.stdin.close()  # type: ignore[union-attr]
            try:
                self.dest.wait(5)
            except subprocess.TimeoutExpired:
                stopProcess(self.dest)


# --------------------------------------------------------------------------
# Servers under test


@dataclass
class Server:
    """
    How to start one SOCKS server under test.
    """

    key: str
    title: str
    version: str  # "socks5" or "socks4"
    workdir: Path
    nofile: int
    executable: str = ""  # twistd, or danted
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    tree: bool = False  # several processes (Dante)
    logFile: Path | None = None
    cores: str = GATEWAY_CORE

    @property
    def via(self) -> str:
        return f"{self.version}:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.port = freePort()
        self.logFile = self.workdir / f"{self.key}-{self.port}.log"
        command = ["prlimit", f"--nofile={self.nofile}", "taskset", "-c", self.cores, *self.command()]
        with open(self.logFile, "wb") as out:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        try:
            waitForPort(self.port, self.process)
        except RuntimeError as error:
            raise RuntimeError(f"{self.title}: {error}; log:\n{self.logTail()}") from None
        time.sleep(0.3)

    def logTail(self) -> str:
        if self.logFile is None or not self.logFile.exists():
            return ""
        return "\n".join(self.logFile.read_text(errors="replace").splitlines()[-20:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss(self) -> int:
        return rssKiB(self.pid, self.tree)

    def pss(self) -> int:
        return pssKiB(self.pid, self.tree)

    def cpu(self) -> float:
        return cpuSeconds(self.pid, self.tree)

    def stop(self) -> None:
        stopProcess(self.process)
        self.process = None


def sourceDigest(directory: Path | None) -> str:
    """
    A digest of the Python source under C{directory}: the code a server
    start picks up (the tree may change while the benchmark runs).
    """
    if directory is None:
        return ""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class Socksgate(Server):
    #: Where the socksgate package that twistd runs lives.
    sourceDir: Path | None = None
    #: The digest of its source at each start.
    digests: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.digests.append(sourceDigest(self.sourceDir))
        super().start()

    #: More options, such as C{--workers 2}.
    options: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        return [
            self.executable,
            "-n",
            "--pidfile=",
            "socksgate",
            "-l",
            f"tcp:{self.port}:interface=127.0.0.1",
            *self.options,
        ]


class TwistedSocks(Server):
    def command(self) -> list[str]:
        return [self.executable, "-n", "--pidfile=", "socks", "-p", str(self.port), "-i", "127.0.0.1"]


class Dante(Server):
    """
    Dante binds each of its outgoing sockets to port 0 of its external
    address before connecting.  Such a port cannot be reused while in
    TIME_WAIT, and while it is (60 s) Linux does not pick it for any
    other connect() on the machine either: so a few ten thousand Dante
    sessions a minute starve the load generator, and anything else on the
    machine, of ephemeral ports.  Hence each start gets an external loopback
    address of its own, and its sessions are capped (see
    L{Settings.danteSessionCap}).
    """

    def command(self) -> list[str]:
        external = f"127.{random.randrange(1, 255)}.{random.randrange(0, 256)}.{random.randrange(1, 255)}"
        config = self.workdir / f"danted-{self.port}.conf"
        config.write_text(
            f"""logoutput: stderr
internal: 127.0.0.1 port = {self.port}
external: {external}
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{
    from: 127.0.0.0/8 to: 127.0.0.0/8
}}
socks pass {{
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
}}
"""
        )
        return [self.executable, "-f", str(config), "-p", str(self.workdir / f"danted-{self.port}.pid")]


# --------------------------------------------------------------------------
# Measurements


@dataclass
class Results:
    stream: dict[str, Any] = field(default_factory=dict)
    #: L{PARALLEL_STREAMS} streams at once, the same bytes in all.
    parallel: dict[str, Any] = field(default_factory=dict)
    sequential: dict[str, Any] = field(default_factory=dict)
    concurrent: dict[str, Any] = field(default_factory=dict)
    #: 64 in flight with SOCKS4 CONNECT (one round trip fewer than SOCKS5).
    concurrent4: dict[str, Any] = field(default_factory=dict)
    idle: dict[str, Any] = field(default_factory=dict)
    slow: dict[str, Any] = field(default_factory=dict)


def measureStream(gen: LoadGen, via: str, settings: Settings, server: Server | None) -> dict[str, Any]:
    gen.run("stream", via, str(gen.sourcePort), str(settings.streamBytes // 4), "60", timeout=90)
    runs = []
    probe = Probe(server)
    for _ in range(settings.streamRuns):
        runs.append(gen.run("stream", via, str(gen.sourcePort), str(settings.streamBytes), "60", timeout=90))
    rates = [run["mb_per_s"] for run in runs]
    result = {
        "mb_per_s": statistics.median(rates),
        "runs_mb_per_s": rates,
        "bytes": settings.streamBytes,
        "complete": all(run["complete"] for run in runs),
        **probe.finish(),
    }
    return result


def refusal(server: Server) -> str:
    """
    Start C{server} once: why it does not start (the last line of its
    log), or an empty string when it serves.
    """
    try:
        server.start()
    except RuntimeError:
        lines = [line for line in server.logTail().splitlines() if line.strip()]
        return "the gateway refused to start: " + (lines[-1].strip() if lines else "no message")
    finally:
        server.stop()
    return ""


def measureParallel(gen: LoadGen, via: str, settings: Settings, server: Server | None) -> dict[str, Any]:
    """
    L{PARALLEL_STREAMS} streams from the I{source} at once, reading
    C{settings.streamBytes} in all: the median of C{settings.streamRuns}
    runs, after a warm-up run of a quarter of the bytes.
    """
    count = str(PARALLEL_STREAMS)
    gen.run("streams", via, str(gen.sourcePort), count, str(settings.streamBytes // 4), "60", timeout=90)
    runs = []
    probe = Probe(server)
    for _ in range(settings.streamRuns):
        runs.append(
            gen.run("streams", via, str(gen.sourcePort), count, str(settings.streamBytes), "60", timeout=90)
        )
    rates = [run["mb_per_s"] for run in runs]
    return {
        "streams": PARALLEL_STREAMS,
        "mb_per_s": statistics.median(rates),
        "runs_mb_per_s": rates,
        "bytes": settings.streamBytes,
        "complete": all(run["complete"] for run in runs),
        **probe.finish(),
    }


def measureSessions(
    gen: LoadGen, via: str, concurrency: int, settings: Settings, cap: int, server: Server | None
) -> dict[str, Any]:
    warm = min(cap // 8, 100_000)
    gen.run(
        "sessions",
        via,
        str(gen.echoPort),
        str(warm),
        "64",
        str(settings.warmupSeconds),
        timeout=settings.warmupSeconds + 30,
    )
    overflows = listenOverflows()
    probe = Probe(server)
    result = gen.run(
        "sessions",
        via,
        str(gen.echoPort),
        str(cap),
        str(concurrency),
        str(settings.sessionSeconds),
        timeout=settings.sessionSeconds + 30,
    )
    # The median of the rates of the 0.1 s windows: a short burst of other
    # work on the machine moves it less than the mean.
    rates = [count / result["window_s"] for count in result["windows"]]
    result["mean_per_s"] = result["per_s"]
    if len(rates) >= 3:
        result["per_s"] = statistics.median(rates)
    result.update(probe.finish())
    result["listen_overflows"] = listenOverflows() - overflows
    return result


def warmUp(gen: LoadGen, server: Server) -> None:
    gen.run("sessions", server.via, str(gen.echoPort), "100", "8", "10", timeout=40)
    time.sleep(0.5)


def holdSessions(gen: LoadGen, server: Server, count: int) -> dict[str, Any]:
    """
    Open C{count} idle sessions, take the server's memory, close them.
    """
    holder = gen.popen("hold", server.via, str(gen.holdPort), str(count), "64", "120")
    try:
        opened = json.loads(holder.stdout.readline())  # type: ignore[union-attr]
        time.sleep(1.0)
        rss, pss = server.rss(), server.pss()
        fds = len(os.listdir(f"/proc/{server.pid}/fd")) if not server.tree else None
        holder.stdin.write("close\n")  # type: ignore[union-attr]
        holder.stdin.flush()  # type: ignore[union-attr]
        closed = json.loads(holder.stdout.readline())  # type: ignore[union-attr]
        holder.wait(30)
    finally:
        stopProcess(holder)
    time.sleep(1.0)
    return {
        "opened": opened["opened"],
        "failed": opened["failed"] + opened["unfinished"],
        "dropped": closed["dropped"],
        "open_seconds": opened["seconds"],
        "rss_kib": rss,
        "pss_kib": pss,
        "fds": fds,
    }


def measureIdle(gen: LoadGen, server: Server, settings: Settings) -> dict[str, Any]:
    """
    Memory per idle session on a fresh server; then, as a leak check, the
    growth over a second round of as many sessions once the first is closed.
    """
    warmUp(gen, server)
    before, pssBefore = server.rss(), server.pss()
    first = holdSessions(gen, server, settings.holdCount)
    afterFirst = server.rss()
    noSecond = {"failed": 0, "dropped": 0, "rss_kib": None}
    second = holdSessions(gen, server, settings.holdCount) if server.key != "dante" else noSecond
    count = first["opened"]
    return {
        "sessions": count,
        "failed": first["failed"] + second["failed"],
        "dropped": first["dropped"] + second["dropped"],
        "open_seconds": first["open_seconds"],
        "rss_before_kib": before,
        "rss_open_kib": first["rss_kib"],
        "rss_after_close_kib": afterFirst,
        "rss_second_round_open_kib": second["rss_kib"],
        "server_fds_open": first["fds"],
        "kib_per_session": (first["rss_kib"] - before) / count if count else None,
        "pss_kib_per_session": (first["pss_kib"] - pssBefore) / count if count else None,
        "second_round_kib_per_session": (
            (second["rss_kib"] - first["rss_kib"]) / count if count and second["rss_kib"] else None
        ),
    }


def measureSlow(gen: LoadGen, server: Server, settings: Settings) -> dict[str, Any]:
    warmUp(gen, server)
    before = server.rss()
    peak, samples, capped = before, [], False
    start = time.monotonic()
    reader = gen.popen(
        "slow", server.via, str(gen.sourcePort), str(settings.slowRate), str(settings.slowSeconds)
    )
    try:
        while reader.poll() is None and time.monotonic() - start < settings.slowSeconds + 20:
            rss = server.rss()
            peak = max(peak, rss)
            samples.append((round(time.monotonic() - start, 2), rss))
            if (rss - before) / 1024 > settings.growthCapMiB:
                capped = True
                break
            time.sleep(0.1)
        if capped:
            reader.terminate()
        output = reader.communicate(timeout=30)[0]
    finally:
        stopProcess(reader)
    read = json.loads(output.splitlines()[-1]) if output.strip() else {}
    return {
        "seconds": settings.slowSeconds,
        "rate": settings.slowRate,
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "growth_mib": (peak - before) / 1024,
        "capped_after_s": round(time.monotonic() - start, 1) if capped else None,
        "bytes_read": read.get("bytes"),
        "samples": samples[:: max(1, len(samples) // 40)],
    }


def runServer(gen: LoadGen, server: Server, settings: Settings) -> Results:
    """
    Each group of measurements on a freshly started server, so that what one
    leaves behind (heap, TIME_WAIT ports) does not count in the next.
    """
    results = Results()
    cap = settings.danteSessionCap if server.key == "dante" else 10_000_000

    def phase(title: str, measure: Any) -> None:
        log(f"== {server.title}: {title}")
        server.start()
        try:
            measure()
        finally:
            server.stop()

    def throughput() -> None:
        results.stream = measureStream(gen, server.via, settings, server)
        log(f"   one stream: {results.stream['mb_per_s']:.0f} MB/s")
        results.parallel = measureParallel(gen, server.via, settings, server)
        log(f"   {PARALLEL_STREAMS} streams: {results.parallel['mb_per_s']:.0f} MB/s")
        results.sequential = measureSessions(gen, server.via, 1, settings, cap, server)
        log(f"   sequential: {results.sequential['per_s']:.0f} sessions/s")

    def concurrent() -> None:
        results.concurrent = measureSessions(gen, server.via, 64, settings, cap, server)
        log(f"   64 in flight: {results.concurrent['per_s']:.0f} sessions/s")
        if server.version == "socks4":
            results.concurrent4 = results.concurrent
        else:
            results.concurrent4 = measureSessions(gen, f"socks4:{server.port}", 64, settings, cap, server)
            log(f"   64 in flight with SOCKS4: {results.concurrent4['per_s']:.0f} sessions/s")

    def idle() -> None:
        results.idle = measureIdle(gen, server, settings)
        log(f"   {results.idle['kib_per_session']:.2f} KiB per idle session")

    def slow() -> None:
        results.slow = measureSlow(gen, server, settings)
        log(f"   {results.slow['growth_mib']:.1f} MiB growth")

    phase("one stream, sequential sessions", throughput)
    phase("64 sessions in flight", concurrent)
    phase("idle sessions", idle)
    phase("slow reader", slow)
    return results


def runDirect(gen: LoadGen, settings: Settings) -> Results:
    log("== direct (no SOCKS server)")
    results = Results()
    results.stream = measureStream(gen, "direct", settings, None)
    log(f"   stream {results.stream['mb_per_s']:.0f} MB/s")
    results.parallel = measureParallel(gen, "direct", settings, None)
    log(f"   {PARALLEL_STREAMS} streams {results.parallel['mb_per_s']:.0f} MB/s")
    results.sequential = measureSessions(gen, "direct", 1, settings, 10_000_000, None)
    log(f"   sequential {results.sequential['per_s']:.0f} sessions/s")
    results.concurrent = measureSessions(gen, "direct", 64, settings, 10_000_000, None)
    log(f"   64 in flight {results.concurrent['per_s']:.0f} sessions/s")
    return results


# --------------------------------------------------------------------------
# Report


def describeMachine(twistd: str) -> dict[str, Any]:
    def output(*command: str) -> str:
        try:
            return subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT, check=False
            ).stdout.strip()
        except OSError:
            return ""

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    commit = output("git", "rev-parse", "--short", "HEAD")
    dirty = bool(output("git", "status", "--porcelain", "--", "socksgate"))
    source = socksgateSource(twistd)
    twistedVersion = output(
        str(Path(twistd).with_name("python")), "-c", "import twisted; print(twisted.__version__)"
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": twistedVersion,
        "commit": commit + (" (with uncommitted changes in socksgate/)" if dirty else ""),
        "socksgate_source": str(source) if source else "",
        "socksgate_digest": sourceDigest(source),
    }


def socksgateSource(twistd: str) -> Path | None:
    """
    The directory of the socksgate package that C{twistd} runs.
    """
    python = Path(twistd).with_name("python")
    try:
        found = subprocess.run(
            [str(python), "-c", "import os, socksgate; print(os.path.dirname(socksgate.__file__))"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return None
    return Path(found) if found else None


def ratio(value: float | None, direct: float) -> str:
    return f" ({value / direct:.2f}x)" if value is not None and direct else ""


def buildTable(direct: Results, servers: dict[str, tuple[Server, Results]]) -> list[list[str]]:
    header = ["", "direct"] + [server.title for server, _ in servers.values()]
    rows = [header]

    def row(name: str, directCell: str, cell: Any) -> None:
        rows.append([name, directCell] + [cell(results) for _, results in servers.values()])

    d = direct
    row(
        "one stream, MB/s",
        f"{d.stream['mb_per_s']:.0f}",
        lambda r: f"{r.stream['mb_per_s']:.0f}{ratio(r.stream['mb_per_s'], d.stream['mb_per_s'])}",
    )

    def spread(figures: dict[str, Any]) -> str:
        return f"{min(figures['runs_mb_per_s']):.0f} – {max(figures['runs_mb_per_s']):.0f}"

    row(
        f"  slowest – fastest of {len(d.stream['runs_mb_per_s'])} runs",
        spread(d.stream),
        lambda r: spread(r.stream),
    )
    row(
        f"{PARALLEL_STREAMS} streams, MB/s in all",
        f"{d.parallel['mb_per_s']:.0f}",
        lambda r: f"{r.parallel['mb_per_s']:.0f}{ratio(r.parallel['mb_per_s'], d.parallel['mb_per_s'])}",
    )
    for label, key in (("sessions/s, sequential", "sequential"), ("sessions/s, 64 in flight", "concurrent")):
        base = getattr(d, key)["per_s"]

        def cell(r: Results, key: str = key, base: float = base) -> str:
            figures = getattr(r, key)
            text = f"{figures['per_s']:.0f}{ratio(figures['per_s'], base)}"
            if figures["failed"]:
                text += f", {figures['failed']} failed"
            return text

        row(label, f"{base:.0f}", cell)
        row(
            f"  latency p50 / p99, ms ({'1' if key == 'sequential' else '64'} in flight)",
            f"{getattr(d, key)['p50_ms']:.2f} / {getattr(d, key)['p99_ms']:.2f}",
            lambda r, key=key: f"{getattr(r, key)['p50_ms']:.2f} / {getattr(r, key)['p99_ms']:.2f}",
        )
    row(
        "  with SOCKS4 CONNECT (64 in flight)",
        "",
        lambda r: f"{r.concurrent4['per_s']:.0f}{ratio(r.concurrent4['per_s'], d.concurrent['per_s'])}",
    )
    row(
        "  listen queue overflows (64 in flight)",
        str(d.concurrent["listen_overflows"]),
        lambda r: str(r.concurrent["listen_overflows"]),
    )

    def busy(figures: dict[str, Any]) -> str:
        cores = figures["core_busy"]
        server = f" (server {figures['server_cpu'] * 100:.0f}%)" if "server_cpu" in figures else ""
        return f"{cores[GATEWAY_CORE] * 100:.0f}%{server} / {cores[LOADGEN_CORE] * 100:.0f}%"

    row("core 0 / core 1 busy, one stream", busy(d.stream), lambda r: busy(r.stream))
    row(f"core 0 / core 1 busy, {PARALLEL_STREAMS} streams", busy(d.parallel), lambda r: busy(r.parallel))
    row("core 0 / core 1 busy, 64 in flight", busy(d.concurrent), lambda r: busy(r.concurrent))

    def idle(r: Results) -> str:
        text = f"{r.idle['kib_per_session']:.2f}"
        if r.idle["pss_kib_per_session"] < 0.8 * r.idle["kib_per_session"]:
            text += f" (PSS {r.idle['pss_kib_per_session']:.2f})"
        if r.idle["failed"] or r.idle["dropped"]:
            text += f" ({r.idle['failed']} failed, {r.idle['dropped']} dropped)"
        return text

    count = next(iter(servers.values()))[1].idle["sessions"] if servers else 0
    row(f"idle session RSS, KiB each ({count} open)", "", idle)
    row(
        "  second round once closed, KiB each (leak check)",
        "",
        lambda r: (
            ""
            if r.idle["second_round_kib_per_session"] is None
            else f"{r.idle['second_round_kib_per_session']:.2f}"
        ),
    )

    def slow(r: Results) -> str:
        if r.slow["capped_after_s"] is not None:
            return f"> {r.slow['growth_mib']:.0f} (stopped after {r.slow['capped_after_s']} s)"
        return f"{r.slow['growth_mib']:.1f}"

    seconds = next(iter(servers.values()))[1].slow["seconds"] if servers else 0
    row(f"RSS growth, slow reader, MiB ({seconds:g} s at 1 MiB/s)", "", slow)
    return rows


def interference(direct: Results, servers: dict[str, tuple[Server, Results]]) -> list[str]:
    """
    Warnings for the measurements during which other processes took a
    good part of a core.
    """
    lines = []
    measured = [("direct", direct)] + [(server.title, results) for server, results in servers.values()]
    for title, results in measured:
        for name, figures in (
            ("one stream", results.stream),
            ("sequential sessions", results.sequential),
            ("64 sessions in flight", results.concurrent),
            ("64 SOCKS4 sessions in flight", results.concurrent4),
        ):
            other = figures.get("other_processes_cpu", 0.0)
            if other > 0.15:
                lines.append(
                    f"- warning: during {title}'s {name}, other processes on the machine took "
                    f"{other * 100:.0f}% of a core: that figure may be too low; run again on a quiet machine"
                )
    return lines


def bars(direct: Results, servers: dict[str, tuple[Server, Results]]) -> list[str]:
    if "socksgate" not in servers:
        return []
    _, sg = servers["socksgate"]
    streamRatio = sg.stream["mb_per_s"] / direct.stream["mb_per_s"]
    sessionsRatio = sg.concurrent["per_s"] / direct.concurrent["per_s"]
    dante = servers.get("dante")
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    issueStream, issueSessions, _, _ = ISSUE_FIGURES["dante"]
    lines.append(
        f"- one stream: {streamRatio:.2f}x direct (bar: at least {BAR_STREAM_DIRECT:g}x): "
        f"{verdict(streamRatio >= BAR_STREAM_DIRECT)}; Dante's figure in the issue {issueStream:g}x"
    )
    if dante:
        danteRatio = dante[1].stream["mb_per_s"] / direct.stream["mb_per_s"]
        over = streamRatio / danteRatio if danteRatio else 0.0
        lines[-1] += (
            f"; Dante in this run {danteRatio:.2f}x, socksgate {over:.2f}x that "
            f"(bar: at least {BAR_STREAM_OVER_DANTE:g}x): {verdict(over >= BAR_STREAM_OVER_DANTE)}"
        )
        parallelRatio = sg.parallel["mb_per_s"] / direct.parallel["mb_per_s"]
        danteParallel = dante[1].parallel["mb_per_s"] / direct.parallel["mb_per_s"]
        lines.append(
            f"- {PARALLEL_STREAMS} streams: {parallelRatio:.2f}x direct; Dante in this run "
            f"{danteParallel:.2f}x: {verdict(parallelRatio >= danteParallel)}"
        )
    lines.append(
        f"- sessions, 64 in flight: {sessionsRatio:.2f}x direct; "
        f"Dante's figure in the issue {issueSessions:g}x: {verdict(sessionsRatio >= issueSessions)}"
    )
    if dante:
        danteRatio = dante[1].concurrent["per_s"] / direct.concurrent["per_s"]
        lines[-1] += f"; Dante in this run {danteRatio:.2f}x: {verdict(sessionsRatio >= danteRatio)}"
        if dante[1].concurrent["failed"]:
            lines[-1] += f" (with {dante[1].concurrent['failed']} failed sessions)"
    idle = sg.idle["kib_per_session"]
    lines.append(
        f"- idle session: {idle:.2f} KiB (bar: at most {BAR_IDLE_KIB:g}): {verdict(idle <= BAR_IDLE_KIB)}"
    )
    growth = sg.slow["growth_mib"]
    lines.append(
        f"- slow reader: {growth:.1f} MiB growth (bar: at most {BAR_GROWTH_MIB:g}): "
        f"{verdict(growth <= BAR_GROWTH_MIB)}"
    )
    return lines


def markdownTable(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell or "–" for cell in row) + " |" for row in rows[1:]]
    return "\n".join(out)


def textTable(rows: list[list[str]]) -> str:
    # A line across the table (a skipped run) does not widen its first column.
    measured = [row for row in rows if any(row[1:])]
    widths = [max(len(row[i]) for row in measured) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a run of about a minute, with shorter loads")
    parser.add_argument(
        "--servers",
        default="socksgate,twisted,dante,workers",
        help="comma-separated: socksgate, twisted (Twisted's SOCKS4 server), dante (if danted is installed),"
        " workers (socksgate --workers 2, unpinned)",
    )
    parser.add_argument(
        "--twistd",
        default=str(Path(sys.executable).with_name("twistd")),
        help="the twistd to run servers with",
    )
    parser.add_argument(
        "--output", default=str(HERE / "results.md"), help="where to write the markdown report"
    )
    parser.add_argument("--json", default=str(HERE / "results.json"), help="where to write the raw figures")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        log("warning: fewer than 2 cores: the server and the load generator will share one")
    for tool in ("taskset", "prlimit"):
        if not shutil.which(tool):
            raise SystemExit(f"benchmarks: {tool} (util-linux) is needed")
    if not Path(args.twistd).exists():
        raise SystemExit(f"benchmarks: no twistd at {args.twistd}; pass --twistd")

    # File descriptors: each idle session is two sockets in the server, one
    # in the load generator and one in the destination servers.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = hard if hard != resource.RLIM_INFINITY else 65536
    nofile = min(nofile, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    if 2 * settings.holdCount + 200 > nofile:
        settings.holdCount = (nofile - 200) // 2
        log(f"warning: RLIMIT_NOFILE is {nofile}: holding {settings.holdCount} idle sessions only")

    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
    waitForDantePorts()
    waitForQuiet()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="socksgate-bench-") as tmp:
        workdir = Path(tmp)
        gen = LoadGen(workdir, maxSeconds=900)
        servers: dict[str, tuple[Server, Results]] = {}
        skipped: list[tuple[str, str]] = []
        try:
            direct = runDirect(gen, settings)
            for name in wanted:
                server: Server
                if name == "socksgate":
                    server = Socksgate(
                        "socksgate", "socksgate (SOCKS5)", "socks5", workdir, nofile, args.twistd
                    )
                    server.sourceDir = socksgateSource(args.twistd)
                elif name == "twisted":
                    server = TwistedSocks(
                        "twisted", "twistd socks (SOCKS4)", "socks4", workdir, nofile, args.twistd
                    )
                elif name == "workers":
                    server = Socksgate(
                        "workers", "socksgate --workers 2 (SOCKS5, unpinned)", "socks5", workdir, nofile,
                        args.twistd, tree=True, cores=BOTH_CORES, options=["--workers", "2"],
                    )  # fmt: skip
                    server.sourceDir = socksgateSource(args.twistd)
                    why = refusal(server)
                    if why:
                        log(f"== {server.title}: skipped: {why}")
                        skipped.append((server.title, why))
                        continue
                    gen.share(BOTH_CORES)
                    try:
                        servers[name] = (server, runServer(gen, server, settings))
                    finally:
                        gen.share(LOADGEN_CORE)
                    continue
                elif name == "dante":
                    danted = shutil.which("danted") or shutil.which("sockd")
                    if not danted:
                        log("== dante: danted not installed, skipped")
                        continue
                    server = Dante(
                        "dante", "Dante 1.4 (SOCKS5)", "socks5", workdir, nofile, danted, tree=True
                    )
                else:
                    raise SystemExit(f"benchmarks: unknown server {name!r}")
                servers[name] = (server, runServer(gen, server, settings))
        finally:
            for server, _ in servers.values():
                server.stop()
            gen.close()

    machine = describeMachine(args.twistd)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    rows = buildTable(direct, servers)
    for title, why in skipped:
        rows.append([f"{title}: skipped, {why}"] + [""] * (len(rows[0]) - 1))
    verdicts = bars(direct, servers)
    warnings = interference(direct, servers)
    if "socksgate" in servers:
        sg = servers["socksgate"][0]
        assert isinstance(sg, Socksgate)
        if len(set(sg.digests + [machine["socksgate_digest"]])) > 1:
            warnings.append(
                f"- warning: socksgate's code in {sg.sourceDir} changed during the run: its figures may "
                "come from different versions; run again"
            )
    elapsed = time.monotonic() - started
    print()
    print(textTable(rows))
    print()
    print("\n".join(verdicts))
    if warnings:
        print()
        print("\n".join(warnings))
    print(f"\n({elapsed:.0f} s)")

    markdown = [
        f"Run on {machine['date']}: `{command}`, {machine['cores']} cores ({machine['cpu']}), "
        f"Linux {machine['kernel']}, Python {machine['python']}, Twisted {machine['twisted']}, "
        f"socksgate {machine['commit']} (source digest {machine['socksgate_digest']}); {elapsed:.0f} s.",
        "",
        markdownTable(rows),
        "",
        "Ratios are to the direct figure.  socksgate's bars:",
        "",
        *verdicts,
        "",
        *([*warnings, ""] if warnings else []),
    ]
    Path(args.output).write_text("\n".join(markdown))
    raw = {
        "machine": machine,
        "command": command,
        "settings": settings.__dict__,
        "direct": direct.__dict__,
        "servers": {name: results.__dict__ for name, (_, results) in servers.items()},
    }
    Path(args.json).write_text(json.dumps(raw, indent=2) + "\n")
    log(f"wrote {args.output} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
