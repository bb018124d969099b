#!/usr/bin/env python3
"""
UDP relay benchmark: datagram round trips per second through socksgate's
UDP ASSOCIATE relay, against the same round trips straight to the echo
server, in the same run.

    python benchmarks/udp.py [--quick] [--seconds S] [--runs N]

Run it by hand with the Python of the environment socksgate is installed
in: the gateway is started as C{twistd -n --pidfile= socksgate -l
tcp:PORT:interface=127.0.0.1} (the C{twistd} beside that Python), pinned to
core 0.  This script is the load generator and the UDP echo server, one
process with one epoll loop, pinned to core 1.

A round trip: the client sends a 64-byte payload (with the SOCKS UDP header
through the gateway), the echo server sends it back, the client reads it
(and checks it).  "1 in flight" sends the next datagram only when the
previous one is back; "32 in flight" keeps 32 under way.  Each figure is the
median over the runs of (round trips in the run / its duration), each run
bounded in time (C{--seconds}) and in count (C{--max-round-trips}), after a
short warm-up.  Everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GATEWAY_CORE = 0
LOADGEN_CORE = 1
PAYLOAD_SIZE = 64
SEQUENCE = struct.Struct("!Q")


def log(message: str) -> None:
    """
    Progress, on standard error.
    """
    print(message, file=sys.stderr, flush=True)


def freePort() -> int:
    """
    A loopback TCP port nobody listens on now.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpuSeconds(pid: int) -> float:
    """
    User and system CPU time of a process, in seconds.
    """
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def coreTimes() -> dict[int, tuple[int, int]]:
    """
    (busy, total) jiffies of each core, from /proc/stat.
    """
    times = {}
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(value) for value in values[:8]]
                idle = numbers[3] + numbers[4]
                times[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return times


def foreignTicks(gatewayPid: int | None) -> dict[int, int]:
    """
    CPU ticks of every user-space process but this one and the gateway.
    """
    ours = {os.getpid(), gatewayPid}
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in ours:
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry) == 2 or int(fields[1]) == 2:
            continue  # kernel threads: they do our network work
        ticks[int(entry)] = sum(int(field) for field in fields[11:15])
    return ticks


def foreignSince(before: dict[int, int], gatewayPid: int | None) -> float:
    """
    CPU seconds other processes used since C{before}.
    """
    after = foreignTicks(gatewayPid)
    ticks = sum(now - before.get(pid, 0) for pid, now in after.items())
    return ticks / os.sysconf("SC_CLK_TCK")


class Gateway:
    """
    socksgate as its own twistd process pinned to core 0, and one UDP
    association through it.
    """

    def __init__(self, twistd: str, workdir: Path) -> None:
        self.port = freePort()
        self.logPath = workdir / "twistd.log"
        command = [
            "taskset", "-c", str(GATEWAY_CORE),
            twistd, "-n", "--pidfile=", "--logfile", str(self.logPath),
            "socksgate", "-l", f"tcp:{self.port}:interface=127.0.0.1",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL)
        self._waitForPort()
        self.control: socket.socket | None = None

    def _waitForPort(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"twistd exited with status {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"socksgate is not listening on 127.0.0.1:{self.port} after {timeout:g} s")

    def associate(self, clientPort: int) -> tuple[str, int]:
        """
        Ask for UDP ASSOCIATE from 127.0.0.1:C{clientPort}, keep the
        control connection open, and return the relay's address.
        """
        control = self.control = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        control.sendall(b"\x05\x01\x00" + b"\x05\x03\x00\x01\x7f\x00\x00\x01" + clientPort.to_bytes(2, "big"))
        reply = b""
        while len(reply) < 12:
            chunk = control.recv(12 - len(reply))
            if not chunk:
                raise RuntimeError(f"the gateway closed the control connection: {reply!r}")
            reply += chunk
        if reply[:2] != b"\x05\x00" or reply[2:6] != b"\x05\x00\x00\x01":
            raise RuntimeError(f"UDP ASSOCIATE refused: {reply!r}")
        return socket.inet_ntoa(reply[6:10]), int.from_bytes(reply[10:12], "big")

    def release(self) -> None:
        """
        Close the control connection, ending the association.
        """
        if self.control is not None:
            self.control.close()
            self.control = None

    def sessionLogged(self, timeout: float = 5.0) -> bool:
        """
        Whether the gateway logs the end of the association (within
        C{timeout} seconds).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.logPath.read_text(errors="replace") if self.logPath.exists() else ""
            if any(" closed: " in line and " udp " in line for line in text.splitlines()):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """
        Stop the twistd process this script started, politely first.
        """
        self.release()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


class Loop:
    """
    The load generator and the echo server: two non-blocking UDP sockets on
    127.0.0.1 in one epoll loop.
    """

    def __init__(self) -> None:
        self.echo = self._socket()
        self.client = self._socket()
        self.epoll = select.epoll()
        self.epoll.register(self.echo.fileno(), select.EPOLLIN)
        self.epoll.register(self.client.fileno(), select.EPOLLIN)

    @staticmethod
    def _socket() -> socket.socket:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        return udp

    def close(self) -> None:
        """
        Close the sockets.
        """
        self.epoll.close()
        self.echo.close()
        self.client.close()

    def run(
        self, target: tuple[str, int], header: bytes, inFlight: int, seconds: float, maxRoundTrips: int
    ) -> dict[str, Any]:
        """
        Keep C{inFlight} round trips under way for C{seconds} or
        C{maxRoundTrips} round trips, whichever comes first.

        @param target: where the client sends: the echo server, or the relay.
        @param header: what precedes the payload on the way out and back
            (the SOCKS UDP header through the gateway; nothing direct).
        """
        echo, client, epoll = self.echo, self.client, self.epoll
        echoRecv, echoSend = echo.recvfrom, echo.sendto
        clientRecv, clientSend = client.recv, client.sendto
        padding = b"\x5a" * (PAYLOAD_SIZE - SEQUENCE.size)
        pack, unpack = SEQUENCE.pack, SEQUENCE.unpack_from
        headerSize = len(header)
        sentAt: dict[int, float] = {}
        latencies: list[float] = []
        nextSequence = 0
        done = lost = 0
        clock = time.perf_counter
        start = clock()
        deadline = start + seconds

        def send() -> None:
            nonlocal nextSequence
            sentAt[nextSequence] = clock()
            clientSend(header + pack(nextSequence) + padding, target)
            nextSequence += 1

        for _ in range(inFlight):
            send()
        while done < maxRoundTrips:
            events = epoll.poll(0.5)
            now = clock()
            if now >= deadline:
                break
            if not events:
                # A datagram was lost: put the window back to full.
                lost += len(sentAt)
                sentAt.clear()
                for _ in range(inFlight):
                    send()
                continue
            for fd, _ in events:
                if fd == echo.fileno():
                    while True:
                        try:
                            data, sender = echoRecv(4096)
                        except BlockingIOError:
                            break
                        echoSend(data, sender)
                else:
                    while True:
                        try:
                            data = clientRecv(4096)
                        except BlockingIOError:
                            break
                        if len(data) != headerSize + PAYLOAD_SIZE or data[:headerSize] != header:
                            raise RuntimeError(f"unexpected datagram {data[:32]!r}")
                        (sequence,) = unpack(data, headerSize)
                        began = sentAt.pop(sequence, None)
                        if began is None:
                            continue
                        latencies.append(clock() - began)
                        done += 1
                        if done + len(sentAt) < maxRoundTrips:
                            send()
        elapsed = clock() - start
        # Drain what is still under way, so the next run starts clean.
        end = clock() + 0.2
        while sentAt and clock() < end:
            for fd, _ in epoll.poll(0.05):
                sock = echo if fd == echo.fileno() else client
                while True:
                    try:
                        data, sender = sock.recvfrom(4096)
                    except BlockingIOError:
                        break
                    if sock is echo:
                        echoSend(data, sender)
                    else:
                        sentAt.pop(unpack(data, headerSize)[0], None)
        latencies.sort()
        return {
            "round_trips": done,
            "seconds": elapsed,
            "rate": done / elapsed,
            "lost": lost,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        }


def measure(
    loop: Loop,
    target: tuple[str, int],
    header: bytes,
    inFlight: int,
    args: argparse.Namespace,
    gatewayPid: int | None,
) -> dict[str, Any]:
    """
    A warm-up, then C{args.runs} runs; the median rate and what the
    gateway's core did.
    """
    loop.run(target, header, inFlight, args.warmup, args.max_round_trips)
    runs, cpu, busy, others = [], [], [], []
    for _ in range(args.runs):
        foreign = foreignTicks(gatewayPid)
        cores = coreTimes()
        before = cpuSeconds(gatewayPid) if gatewayPid else 0.0
        result = loop.run(target, header, inFlight, args.seconds, args.max_round_trips)
        after = coreTimes()
        others.append(foreignSince(foreign, gatewayPid) / result["seconds"])
        runs.append(result)
        if gatewayPid:
            cpu.append((cpuSeconds(gatewayPid) - before) / result["seconds"])
        busy.append(
            {
                core: (after[core][0] - cores[core][0]) / max(1, after[core][1] - cores[core][1])
                for core in (GATEWAY_CORE, LOADGEN_CORE)
            }
        )
    rates = sorted(run["rate"] for run in runs)
    middle = sorted(runs, key=lambda run: run["rate"])[len(runs) // 2]
    return {
        "rate": statistics.median(rates),
        "slowest": rates[0],
        "fastest": rates[-1],
        "p50_ms": middle["p50_ms"],
        "p99_ms": middle["p99_ms"],
        "lost": sum(run["lost"] for run in runs),
        "round_trips": sum(run["round_trips"] for run in runs),
        "gateway_cpu": statistics.median(cpu) if cpu else None,
        "core_busy": {
            core: statistics.median(each[core] for each in busy) for core in (GATEWAY_CORE, LOADGEN_CORE)
        },
        "other_processes_cpu": max(others),
    }


def table(results: dict[tuple[str, int], dict[str, Any]], windows: list[int]) -> str:
    """
    The results as a markdown table.
    """
    lines = [
        "|  | direct | socksgate UDP relay |",
        "|---|---|---|",
    ]
    for inFlight in windows:
        direct, relayed = results["direct", inFlight], results["gateway", inFlight]
        lines.append(
            f"| round trips/s, {inFlight} in flight | {direct['rate']:,.0f} | "
            f"{relayed['rate']:,.0f} ({relayed['rate'] / direct['rate']:.2f}x) |"
        )
        lines.append(
            f"|   slowest – fastest of the runs | {direct['slowest']:,.0f} – {direct['fastest']:,.0f} | "
            f"{relayed['slowest']:,.0f} – {relayed['fastest']:,.0f} |"
        )
        lines.append(
            f"|   latency p50 / p99, ms | {direct['p50_ms']:.3f} / {direct['p99_ms']:.3f} | "
            f"{relayed['p50_ms']:.3f} / {relayed['p99_ms']:.3f} |"
        )
        busy = relayed["core_busy"]
        cpu = relayed["gateway_cpu"]
        perTrip = 1e6 * cpu / relayed["rate"] if relayed["rate"] else float("nan")
        lines.append(
            f"|   core 0 / core 1 busy (gateway's CPU; per round trip) | "
            f"{100 * direct['core_busy'][GATEWAY_CORE]:.0f}% / "
            f"{100 * direct['core_busy'][LOADGEN_CORE]:.0f}% | "
            f"{100 * busy[GATEWAY_CORE]:.0f}% / {100 * busy[LOADGEN_CORE]:.0f}% "
            f"(gateway {100 * cpu:.0f}%; {perTrip:.1f} µs) |"
        )
        lines.append(f"|   datagrams lost | {direct['lost']} | {relayed['lost']} |")
    return "\n".join(lines)


def main() -> int:
    """
    Run the benchmark and print the table.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s runs, 3 of each")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run (default 5)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (default 5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up before each measurement")
    parser.add_argument("--max-round-trips", type=int, default=1_000_000, help="at most this many per run")
    parser.add_argument("--in-flight", default="1,32", help="windows to measure (default 1,32)")
    parser.add_argument(
        "--twistd", default=str(Path(sys.executable).with_name("twistd")), help="the twistd to run socksgate"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.runs, args.warmup = 1.0, 3, 0.5
    windows = [int(each) for each in args.in_flight.split(",")]
    if os.cpu_count() is None or os.cpu_count() < 2:  # type: ignore[operator]
        raise SystemExit("benchmarks: needs at least 2 cores")
    if not Path(args.twistd).exists():
        raise SystemExit(f"benchmarks: no twistd at {args.twistd}; pass --twistd")

    began = time.monotonic()
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="socksgate-udp-bench-") as workdir:
        gateway = Gateway(args.twistd, Path(workdir))
        os.sched_setaffinity(0, {LOADGEN_CORE})
        loop = Loop()
        try:
            relay = gateway.associate(loop.client.getsockname()[1])
            echo = loop.echo.getsockname()
            header = b"\x00\x00\x00\x01" + socket.inet_aton(echo[0]) + echo[1].to_bytes(2, "big")
            for inFlight in windows:
                log(f"direct, {inFlight} in flight")
                results["direct", inFlight] = measure(loop, echo, b"", inFlight, args, None)
                log(f"through socksgate, {inFlight} in flight")
                results["gateway", inFlight] = measure(
                    loop, relay, header, inFlight, args, gateway.process.pid
                )
            gateway.release()
            logged = gateway.sessionLogged()
        finally:
            loop.close()
            gateway.stop()

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/udp.py" + (" --quick" if args.quick else "")
    print(
        f"Run on {when}: `{command}`, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}; {PAYLOAD_SIZE}-byte payloads, {args.runs} runs of "
        f"{args.seconds:g} s each (median), after {args.warmup:g} s of warm-up; "
        f"{time.monotonic() - began:.0f} s in all.\n"
    )
    print(table(results, windows))
    if not logged:
        print("\nWarning: the gateway did not log the end of the association.")
    busiest = max(result["other_processes_cpu"] for result in results.values())
    if busiest > 0.15:
        print(
            f"\nWarning: other processes took up to {100 * busiest:.0f}% of a core during a run: "
            "the figures may be too low. Run again on a quiet machine."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
