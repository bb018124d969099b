"""
The cost of one policy decision for 10, 1,000 and 10,000 rules.

    python benchmarks/rules.py

For each size it builds a file of rules (each permits one client /24 to
a few destinations and ports, as an administrator's per-department rules
would), loads it with socksgate's loader, and times the decision for:

- an early match: a request the 5th rule decides (most requests in a policy
  whose common rules come first);
- a late match: a request the last rule decides;
- no match: a request no rule matches (every applicable rule is tried);
- a name before resolution, whose answer depends on the address.

Nothing here touches the network.  Each figure is the best of 5 runs of
enough decisions to take about 0.2 s.
"""

from __future__ import annotations

import time
from ipaddress import ip_address

from socksgate.config import parseConfig
from socksgate.policy import AccessRequest
from socksgate.rules import RulePolicy


def rulesText(count: int) -> str:
    """
    A file of C{count} rules.
    """
    parts = []
    for index in range(count - 1):
        parts.append(
            f'[[rule]]\naction = "permit"\nclients = ["10.{index // 256 % 256}.{index % 256}.0/24"]\n'
            f'destinations = [".dept{index}.example", "192.0.2.0/24"]\nports = ["80", "443", "8000-8999"]\n'
            'commands = ["connect"]\n'
        )
    parts.append('[[rule]]\naction = "deny"\ndestinations = ["198.51.100.0/24"]\nmessage = "last"\n')
    return "".join(parts)


def request(client: str, name: str | None, address: str | None, port: int = 443) -> AccessRequest:
    return AccessRequest(
        ip_address(client), 1, "tcp:1080", "5", "connect", name,
        ip_address(address) if address else None, port,
    )  # fmt: skip


def perDecision(policy: RulePolicy, subject: AccessRequest) -> float:
    """
    Microseconds per decision, best of 5.
    """
    decide = policy.decide
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            decide(subject)
        if time.perf_counter() - start > 0.02:
            break
        count *= 2
    count *= 10
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            decide(subject)
        best = min(best, (time.perf_counter() - start) / count)
    return best * 1e6


def main() -> None:
    rows = []
    for size in (10, 1000, 10000):
        loadStart = time.perf_counter()
        policy = parseConfig(rulesText(size), "bench.toml").policy
        loadSeconds = time.perf_counter() - loadStart
        assert isinstance(policy, RulePolicy)
        early = request("10.0.4.7", None, "192.0.2.9")
        late = request("10.9.9.9", None, "198.51.100.1")
        none = request("172.16.0.1", None, "203.0.113.1")
        name = request("10.0.4.7", "www.example.org", None)
        assert policy.decide(early).rule == 5 and policy.decide(late).rule == size
        assert policy.decide(none).rule is None
        rows.append(
            (size, perDecision(policy, early), perDecision(policy, late), perDecision(policy, none),
             perDecision(policy, name), loadSeconds)
        )  # fmt: skip
    header = (
        "| rules | early match, µs | last rule, µs | no match, µs | name before resolution, µs | load, s |"
    )
    print(header)
    print("|---|---|---|---|---|---|")
    for size, early, late, none, name, load in rows:
        print(f"| {size} | {early:.2f} | {late:.1f} | {none:.1f} | {name:.2f} | {load:.2f} |")


if __name__ == "__main__":
    main()
