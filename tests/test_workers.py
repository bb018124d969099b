"""
C{twistd -n socksgate --workers 2}, end to end: a real parent and real
worker processes serving one listening socket on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.web.client import Agent, readBody

from socksgate.testing import startEchoServer

from .helpers import CollectingProcess, LoopbackTestCase, connectRaw, socks5Connect, startProcess
from .test_twistd import TWISTD

PERMIT = '[[rule]]\naction = "permit"\nclients = ["127.0.0.0/8"]\n'


def denyPort(port: int) -> str:
    """
    A configuration that denies destination C{port} and permits the rest
    from loopback.
    """
    return f'[[rule]]\naction = "deny"\nports = ["{port}"]\n\n' + PERMIT


def session(port: int, destination: int) -> Deferred[int]:
    """
    L{runSession} as a Deferred, for L{gatherResults}.
    """
    return Deferred.fromCoroutine(runSession(port, destination))


async def runSession(port: int, destination: int) -> int:
    """
    One SOCKS5 CONNECT through the gateway on C{port} to the echo server on
    C{destination}: the reply code (0 when granted, and the echo checked).
    """
    client = await connectRaw(port)
    client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", destination, atyp=1) + b"ping")
    reply = await client.receive(12)
    code = reply[3] if len(reply) == 12 else -1
    if code == 0 and await client.receive(4) != b"ping":
        code = -2
    client.transport.loseConnection()
    await client.closed
    return code


class WorkersTests(LoopbackTestCase):
    """
    Several worker processes behind one twistd parent.
    """

    timeout = 120

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.accessLog = os.path.join(self.directory, "access.log")
        self.configPath = os.path.join(self.directory, "socksgate.toml")
        with open(self.configPath, "w") as stream:
            stream.write(PERMIT)
        self.echo = startEchoServer(self)

    async def startGateway(self, *extra: str) -> tuple[Any, CollectingProcess]:
        """
        Start C{twistd -n socksgate --workers 2} with a session log and a
        status page; wait (bounded) until both workers listen.
        """
        transport, process = await startProcess(
            self,
            TWISTD + ["-n", "--pidfile=", "socksgate", "--listen", "tcp:0:interface=127.0.0.1",
                      "--workers", "2", "-c", self.configPath, "--access-log", self.accessLog,
                      "--status", "tcp:0:interface=127.0.0.1", *extra],
            b"shared listener",
        )  # fmt: skip
        self.addCleanup(self.stopGateway, transport, process)
        for _ in range(200):
            if all(f"[worker {n}] SOCKSServerFactory starting".encode() in process.output for n in (1, 2)):
                break
            await deferLater(reactor, 0.05, lambda: None)
        self.port = int(re.search(rb"shared listener \S+ on port (\d+)", process.output).group(1))
        self.statusPort = int(re.search(rb"/metrics on IPv4Address.*?port=(\d+)", process.output).group(1))
        return transport, process

    def stopGateway(self, transport: Any, process: CollectingProcess) -> Deferred[Any]:
        """
        Kill the parent if it still runs (its workers stop when their pipe
        from it ends), and wait for it.
        """
        if not process.ended.called:
            transport.signalProcess("KILL")
        return process.ended

    def killWorkers(self, pids: list[int]) -> None:
        """
        Kill those of the worker processes C{pids} that still run (a test
        that failed may leave them draining).
        """
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as stream:
                    if b"socksgate.workers" in stream.read():
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    async def fetch(self, path: str) -> bytes:
        """
        GET C{path} from the status server.
        """
        response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{self.statusPort}{path}".encode())
        return await readBody(response)

    async def status(self) -> dict[str, Any]:
        """
        The parent's C{/status.json}.
        """
        return json.loads(await self.fetch("/status.json"))

    async def sessionsUntilBothServe(self, field: str, rounds: int = 40) -> list[int]:
        """
        Run rounds of 20 concurrent sessions until both workers' C{field}
        (in C{/status.json}) has grown, at most C{rounds} rounds.

        @return: the reply codes of every session run.
        """
        before = {worker["worker"]: worker[field] for worker in (await self.status())["workers"]}
        codes: list[int] = []
        for _ in range(rounds):
            codes += await gatherResults([session(self.port, self.echo.port) for _ in range(20)])
            workers = (await self.status())["workers"]
            if all(worker[field] > before[worker["worker"]] for worker in workers):
                break
        return codes

    async def waitFor(self, predicate: Any, what: str) -> None:
        """
        Wait, at most ten seconds, until C{predicate()} (which may return a
        Deferred) is true.
        """
        for _ in range(200):
            if await predicate():
                return
            await deferLater(reactor, 0.05, lambda: None)
        self.fail(f"timed out waiting for {what}")

    async def test_serveLogCountAndStop(self) -> None:
        """
        Both workers serve connections from the one listening port; after
        many concurrent sessions the session log has one well-formed line
        per session (no two records on one line, none cut), the status page
        and C{/metrics} count the sessions of both workers, and SIGTERM
        stops both workers and then the parent.
        """
        transport, process = await self.startGateway()
        codes = await self.sessionsUntilBothServe("finished")
        codes += await gatherResults([session(self.port, self.echo.port) for _ in range(100)])
        self.assertEqual(set(codes), {0})

        async def allCounted() -> bool:
            return (await self.status())["sessions"]["finished"] == len(codes)

        await self.waitFor(allCounted, "the status page to count every session")
        status = await self.status()
        workers = status["workers"]
        self.assertEqual([worker["worker"] for worker in workers], [1, 2])
        self.assertTrue(all(worker["finished"] > 0 for worker in workers), workers)
        self.assertEqual(sum(worker["finished"] for worker in workers), len(codes))
        metrics = (await self.fetch("/metrics")).decode()
        counted = sum(
            float(value) for value in re.findall(r"^socksgate_sessions_total\{.*\} (\S+)$", metrics, re.M)
        )
        self.assertEqual(counted, len(codes))
        self.assertIn("socksgate_workers 2.0", metrics)
        pids = [worker["pid"] for worker in workers]

        transport.signalProcess(signal.SIGTERM)
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        for pid in pids:
            self.assertRaises(ProcessLookupError, os.kill, pid, 0)
        with open(self.accessLog, "rb") as stream:
            lines = stream.read().split(b"\n")
        self.assertEqual(lines[-1], b"")
        records = [json.loads(line) for line in lines[:-1]]
        self.assertEqual(len(records), len(codes))
        self.assertEqual(len({record["session"] for record in records}), len(codes))
        self.assertEqual({record["outcome"] for record in records}, {"closed"})

    async def test_killedWorkerIsReplaced(self) -> None:
        """
        A worker killed with SIGKILL is started again by the parent, and
        the gateway goes on serving, with the new worker too.
        """
        transport, process = await self.startGateway()
        workers = (await self.status())["workers"]
        killed = workers[0]["pid"]
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> bool:
            first = (await self.status())["workers"][0]
            return first["pid"] not in (None, killed) and first["restarts"] == 1

        await self.waitFor(replaced, "worker 1 to be started again")
        self.assertIn(b"worker 1 (pid %d) ended" % killed, process.output)
        codes = await self.sessionsUntilBothServe("finished")
        self.assertEqual(set(codes), {0})
        workers = (await self.status())["workers"]
        self.assertTrue(all(worker["finished"] > 0 for worker in workers), workers)
        transport.signalProcess(signal.SIGTERM)
        await process.ended

    async def test_hangUpReachesBoth(self) -> None:
        """
        SIGHUP to the parent reaches every worker: after a reload that
        denies the echo server's port, both workers deny it.
        """
        transport, process = await self.startGateway()
        self.assertEqual(set(await self.sessionsUntilBothServe("finished")), {0})
        with open(self.configPath, "w") as stream:
            stream.write(denyPort(self.echo.port))
        transport.signalProcess(signal.SIGHUP)

        async def reloaded() -> bool:
            return all(f"[worker {n}] reloaded {self.configPath}".encode() in process.output for n in (1, 2))

        await self.waitFor(reloaded, "both workers to reload")
        codes = await self.sessionsUntilBothServe("denials")
        self.assertEqual(set(codes), {2})
        workers = (await self.status())["workers"]
        self.assertTrue(all(worker["denials"] > 0 for worker in workers), workers)
        transport.signalProcess(signal.SIGTERM)
        await process.ended

    async def test_secondTermClosesAtOnce(self) -> None:
        """
        With C{grace-period = 600}, a first SIGTERM to the parent makes both
        workers stop listening and let their open sessions run (no record
        is written yet); a second SIGTERM to the parent makes them close
        those sessions at once: the parent and its workers end long before
        the grace period, and the session log has one record for every
        session.
        """
        with open(self.configPath, "w") as stream:
            stream.write("[server]\ngrace-period = 600\n\n" + PERMIT)
        transport, process = await self.startGateway()
        self.addCleanup(self.killWorkers, [worker["pid"] for worker in (await self.status())["workers"]])
        clients = []
        for _ in range(6):
            client = await connectRaw(self.port)
            client.transport.write(socks5Connect(b"\x7f\x00\x00\x01", self.echo.port, atyp=1) + b"ping")
            self.assertEqual((await client.receive(12))[1], 0)
            self.assertEqual(await client.receive(4), b"ping")
            clients.append((client, client.transport.getHost().port))
        transport.signalProcess(signal.SIGTERM)

        async def draining() -> bool:
            counts = re.findall(rb"\] stopping: (\d+) sessions open", process.output)
            return sum(int(count) for count in counts) == len(clients)

        await self.waitFor(draining, "the workers to drain their six sessions")
        self.assertEqual(os.path.exists(self.accessLog) and os.path.getsize(self.accessLog), 0)
        self.assertFalse(process.ended.called)
        transport.signalProcess(signal.SIGTERM)
        for _ in range(600):  # at most 60 s: a tenth of the grace period
            if process.ended.called:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertTrue(process.ended.called, process.output)
        self.assertEqual(await process.ended, (None, signal.SIGTERM), process.output)
        for client, _ in clients:
            await client.closed
        with open(self.accessLog) as stream:
            records = [json.loads(line) for line in stream]
        self.assertEqual(
            sorted((record["client"], record["outcome"]) for record in records),
            sorted((f"127.0.0.1:{port}", "closed") for _, port in clients),
        )
