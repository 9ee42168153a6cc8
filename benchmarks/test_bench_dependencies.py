"""Dependencies at scale: the desired state after one token change, in a 5,000-resource lab.

5 switches -> 50 racks -> 500 stacks -> 4,445 hosts (every host three levels below its
switch). A token change recomputes only the branch above the host it touches; the baseline,
measured in the same run, recomputes the desired state of all 5,000 resources. The lab is
not running, so no pass is started: what is timed is the bookkeeping alone. Every policy has
no off delay, so each acquire and each release flips the whole branch up to the switch (the
worst case). Timings are reported, never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
import time

from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import ResourcePolicy
from tests.core.fakes import FakeFeed

from .conftest import Row

SWITCHES, RACKS, STACKS, RESOURCES = 5, 50, 500, 5000
HOSTS = RESOURCES - SWITCHES - RACKS - STACKS
TARGET_MS = 1.0
POLICY = ResourcePolicy(off_delay=0, min_off_time=0)
ROUNDS = 7


def specs() -> list[ResourceSpec]:
    """The lab, parents after their children (so add_all cannot rely on the order)."""

    def spec(name: str, *parents: str) -> ResourceSpec:
        return ResourceSpec(
            name=name, feeds=(FakeFeed(name=name),), policy=POLICY, depends_on=parents
        )

    switches = [spec(f"switch-{i}") for i in range(SWITCHES)]
    racks = [spec(f"rack-{i:02d}", f"switch-{i % SWITCHES}") for i in range(RACKS)]
    stacks = [spec(f"stack-{i:03d}", f"rack-{i % RACKS:02d}") for i in range(STACKS)]
    hosts = [spec(f"host-{i:04d}", f"stack-{i % STACKS:03d}") for i in range(HOSTS)]
    return hosts + stacks + racks + switches


def median_of(rounds: int, body: Callable[[], None]) -> float:
    """The median wall seconds of `body` over `rounds` runs."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        body()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def verdict(ok: bool) -> str:
    """What the table says about a target."""
    return "ok" if ok else "MISSED"


async def test_dependency_recomputation(report: list[Row]) -> None:
    """One token change recomputes one branch, against recomputing the whole lab."""
    definitions = specs()
    assert len(definitions) == RESOURCES
    lab = Lab(clock=time.time, listener=lambda event: None)
    start = time.perf_counter()
    lab.add_all(definitions)
    add_all_s = time.perf_counter() - start
    one_by_one = Lab(clock=time.time, listener=lambda event: None)
    start = time.perf_counter()
    for spec in reversed(definitions):  # parents first
        one_by_one.add(spec)
    one_by_one_s = time.perf_counter() - start
    # Read every machine (all off), then derive the demand once, as start does.
    for name in lab.names:
        await lab.reconciler(name).observe()
    lab.recompute_desired()
    assert not any(lab.desired_on(name) for name in lab.names)

    full_s = median_of(ROUNDS, lab.recompute_desired)

    hosts = [name for name in lab.names if name.startswith("host-")]
    ledger = lab.ledger

    def recompute_branches() -> None:
        # The recomputation alone: the ledger changes, then the lab walks up from it.
        for host in hosts:
            token = ledger.acquire(host, "bench")
            lab._propagate((host,))
            ledger.release(token.id)
            lab._propagate((host,))

    def acquire_release() -> None:
        # The public path: ledger, events, expiry, and the same walk.
        for host in hosts:
            [token] = lab.acquire([host], "bench")
            lab.release([token.id])

    branch_s = median_of(ROUNDS, recompute_branches) / (2 * len(hosts))
    pair_s = median_of(ROUNDS, acquire_release) / len(hosts)

    # The work was done: a token holds its host's whole branch, and its release frees it.
    [token] = lab.acquire(["host-0007"], "check")
    assert lab.ancestors("host-0007") == ["stack-007", "rack-07", "switch-2"]
    assert all(lab.desired_on(name) for name in lab.ancestors("host-0007"))
    assert lab.child_demand("switch-2") == 1
    assert sum(lab.desired_on(name) for name in lab.names) == 4
    lab.release([token.id])
    assert not any(lab.desired_on(name) for name in lab.names)
    assert ledger.token_count == 0

    full_ms, branch_ms, pair_ms = full_s * 1000, branch_s * 1000, pair_s * 1000
    report.append(
        Row(
            14,
            f"Desired state after one token change ({RESOURCES:,} resources, depth 3)",
            f"{branch_ms * 1000:,.1f} µs",
            f"all {RESOURCES:,} recomputed {full_ms:,.2f} ms",
            f"{branch_ms / full_ms:.4f}",
            f"<= {TARGET_MS:g} ms",
            verdict(branch_ms <= TARGET_MS),
        )
    )
    report.append(
        Row(
            15,
            "  (Lab.acquire + Lab.release of one host, whole branch flips twice)",
            f"{pair_ms * 1000:,.1f} µs per pair",
            "",
            f"{pair_ms / full_ms:.4f}",
            f"<= {2 * TARGET_MS:g} ms",
            verdict(pair_ms <= 2 * TARGET_MS),
        )
    )
    report.append(
        Row(
            16,
            f"  (adding {RESOURCES:,} resources with dependencies)",
            f"add_all {add_all_s * 1000:,.0f} ms",
            f"one by one {one_by_one_s * 1000:,.0f} ms",
            f"{add_all_s / one_by_one_s:.2f}",
            "linear, not quadratic",
            "",
        )
    )
