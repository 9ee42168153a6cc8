"""The IPMI BMC client against a real ipmi_sim (Debian's openipmi) on 127.0.0.1.

The simulated chassis keeps its power in a file; a soft off (ACPI) makes the simulated OS
shut down at once, after a delay or never, as a file says. ipmitool, the reference client,
checks what the driver reports. No packet leaves 127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
import socket
import time
from types import SimpleNamespace
from typing import Any

from pyipmi.errors import (
    AuthenticationError,
    CompletionCodeError,
    DecodingError,
    MessageStatusCodeError,
    NotSupportedError,
    RetryError,
)
import pytest

from custom_components.labpower.core.events import EventKind, LabEvent
from custom_components.labpower.core.lab import Lab, ResourceSpec
from custom_components.labpower.core.model import (
    PowerAction,
    PowerState,
    ResourcePolicy,
    ResourceState,
)
from custom_components.labpower.core.switching import (
    ConfigurationSwitchError,
    TransientSwitchError,
)
from custom_components.labpower.drivers import ipmi as ipmi_driver
from custom_components.labpower.drivers.bmc import (
    BMC_AUTH,
    BmcAuthError,
    BmcSwitcher,
    BmcUnreachableError,
)
from custom_components.labpower.drivers.ipmi import Executor, IpmiClient

from .core.fakes import FakeClock
from .peers.ipmi_sim import HOST, IPMI_SIM, IPMITOOL, Sim
from .peers.net import free_port

pytestmark = [
    pytest.mark.skipif(
        IPMI_SIM is None or IPMITOOL is None,
        reason="needs ipmi_sim and ipmitool (Debian's openipmi and ipmitool)",
    ),
    pytest.mark.usefixtures("socket_enabled"),
]


@pytest.fixture
def executor() -> Iterator[Executor]:
    """A thread pool of the test's own, shut down (threads joined) at the end."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ipmi-test")

    def run[T](func: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(pool, func)

    yield run
    pool.shutdown(wait=True)


def make_client(sim: Sim, executor: Executor, **kwargs: object) -> IpmiClient:
    """A client of the simulator as admin, unless `kwargs` say otherwise."""
    options: dict[str, object] = {
        "username": "admin",
        "password": "password",
        "port": sim.port,
        "timeout": 1.0,
        "executor": executor,
    } | kwargs
    return IpmiClient(HOST, **options)  # type: ignore[arg-type]


@pytest.fixture
async def client(sim: Sim, executor: Executor) -> AsyncIterator[IpmiClient]:
    """A client of the simulator, closed at the end."""
    client = make_client(sim, executor)
    yield client
    await client.close()


async def wait_for_state(
    client: IpmiClient, state: PowerState, within: float = 5.0
) -> float:
    """Poll until the BMC reports `state`; the seconds it took."""
    start = time.monotonic()
    while (seen := await client.power_state()) is not state:
        if time.monotonic() - start > within:
            raise AssertionError(f"still {seen} after {within:g} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


# The client against the simulator


async def test_status_off(client: IpmiClient, sim: Sim) -> None:
    assert client.description == f"ipmi {HOST}:{sim.port}"
    assert await client.power_state() is PowerState.OFF
    assert await sim.ipmitool("chassis", "power", "status") == "Chassis Power is off"


async def test_power_on(client: IpmiClient, sim: Sim) -> None:
    await client.power_on()
    assert await client.power_state() is PowerState.ON
    assert sim.power == "1"
    assert sim.calls == ["power 1"]
    assert await sim.ipmitool("chassis", "power", "status") == "Chassis Power is on"


async def test_soft_off_lets_the_os_shut_down(client: IpmiClient, sim: Sim) -> None:
    sim.reset_chassis(power="1", soft_off="0.5")
    await client.power_off(graceful=True)
    assert sim.calls == ["shutdown 1"]  # ACPI soft off, not a power down
    assert await client.power_state() is PowerState.ON  # the OS is shutting down
    took = await wait_for_state(client, PowerState.OFF)
    assert 0.2 < took < 3
    assert sim.power == "0"
    assert sim.calls == ["shutdown 1"]


async def test_soft_off_ignored_by_the_os(client: IpmiClient, sim: Sim) -> None:
    sim.reset_chassis(power="1", soft_off="ignore")
    await client.power_off()  # graceful by default
    await asyncio.sleep(0.2)
    assert await client.power_state() is PowerState.ON
    assert sim.calls == ["shutdown 1"]


async def test_hard_off(client: IpmiClient, sim: Sim) -> None:
    sim.reset_chassis(power="1", soft_off="ignore")
    await client.power_off(graceful=False)
    assert await client.power_state() is PowerState.OFF
    assert sim.power == "0"
    assert sim.calls == ["power 0"]


async def test_reset_is_recorded(client: IpmiClient, sim: Sim) -> None:
    sim.reset_chassis(power="1")
    await client.reset()
    assert sim.resets == 1
    assert sim.calls == ["reset 1"]
    assert await client.power_state() is PowerState.ON


async def test_power_reading_none_without_dcmi(client: IpmiClient, sim: Sim) -> None:
    # ipmi_sim has no DCMI: Get Power Reading answers 0xc1 (invalid command).
    assert await client.power_reading() is None
    assert await client.power_reading() is None  # not asked again
    assert client._dcmi_unsupported
    assert await client.power_state() is PowerState.OFF  # the session is fine


async def test_ipmitool_agrees_with_the_driver(client: IpmiClient, sim: Sim) -> None:
    said = {
        PowerState.ON: "Chassis Power is on",
        PowerState.OFF: "Chassis Power is off",
    }
    for action, state in (
        (client.power_on, PowerState.ON),
        (lambda: client.power_off(graceful=False), PowerState.OFF),
    ):
        await action()
        assert await client.power_state() is state
        assert await sim.ipmitool("chassis", "power", "status") == said[state]
    # ... and the other way round: what ipmitool switches, the driver reads.
    assert (
        await sim.ipmitool("chassis", "power", "on") == "Chassis Power Control: Up/On"
    )
    assert await client.power_state() is PowerState.ON
    await sim.ipmitool("chassis", "power", "off")
    assert await client.power_state() is PowerState.OFF


async def test_other_completion_code_is_transient(client: IpmiClient) -> None:
    # ipmi_sim does not know DCMI Get Power Limit either.
    with pytest.raises(TransientSwitchError, match="completion code 0xc1") as caught:
        await client._run(lambda ipmi: ipmi.get_power_limit(), "power limit")
    assert not isinstance(caught.value, BmcUnreachableError | BmcAuthError)
    assert await client.power_state() is PowerState.OFF


async def test_default_executor(sim: Sim) -> None:
    # Without an executor the loop's default one runs the calls (HA passes its own).
    client = IpmiClient(HOST, "admin", "password", port=sim.port)
    try:
        assert await client.power_state() is PowerState.OFF
    finally:
        await client.close()


# Errors


@pytest.mark.parametrize(
    ("username", "password"), [("admin", "Zq9x-wrong"), ("nobody", "Zq9x-any")]
)
async def test_wrong_credentials_fail_fast(
    sim: Sim, executor: Executor, username: str, password: str
) -> None:
    client = make_client(sim, executor, username=username, password=password)
    # Refused (the BMC's RAKP answer), not a timeout: BmcAuthError, not unreachable.
    with pytest.raises(BmcAuthError) as caught:
        await client.power_state()
    assert caught.value.issue == BMC_AUTH
    assert "Zq9x" not in str(caught.value)  # never the password
    await client.close()


async def test_closed_port_is_unreachable(executor: Executor) -> None:
    port = free_port(socket.SOCK_DGRAM)
    client = IpmiClient(HOST, "admin", "password", port=port, executor=executor)
    with pytest.raises(BmcUnreachableError, match=f"{HOST}:{port}"):
        await client.power_on()
    await client.close()


async def test_silent_bmc_times_out(executor: Executor) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        client = IpmiClient(
            HOST, "admin", "password", port=port, timeout=0.5, executor=executor
        )
        with pytest.raises(BmcUnreachableError, match="no response to RMCP ping"):
            await client.power_state()
        await client.close()


async def test_password_too_long_for_ipmi(sim: Sim, executor: Executor) -> None:
    client = make_client(sim, executor, password="x" * 21)
    with pytest.raises(BmcAuthError, match="20 bytes"):
        await client.power_state()


async def test_cipher_suite_the_bmc_refuses(sim: Sim, executor: Executor) -> None:
    # ipmi_sim has no SHA256 (cipher suite 17): a setting to change, not credentials.
    client = make_client(sim, executor, cipher_suite=17)
    with pytest.raises(ConfigurationSwitchError, match="cipher suite 17") as caught:
        await client.power_state()
    assert not isinstance(caught.value, BmcAuthError)


async def test_session_privilege(sim: Sim, executor: Executor) -> None:
    viewer = make_client(sim, executor, privilege="user")
    assert await viewer.power_state() is PowerState.OFF
    with pytest.raises(BmcAuthError, match=r"privilege user not allowed.*0xd4"):
        await viewer.power_on()
    await viewer.close()
    operator = make_client(sim, executor, privilege="operator")
    await operator.power_on()
    # ipmi_sim wants administrator for DCMI: no reading, not an error, asked again later.
    assert await operator.power_reading() is None
    assert not operator._dcmi_unsupported
    await operator.close()
    assert sim.power == "1"


async def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="cipher suite 0"):
        IpmiClient(HOST, "admin", "password", cipher_suite=0)
    with pytest.raises(ValueError, match="privilege"):
        IpmiClient(HOST, "admin", "password", privilege="root")


# Sessions


async def test_session_is_kept_and_reopened_when_idle(
    client: IpmiClient, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.power_state()
    first = client._ipmi
    await client.power_on()
    assert client._ipmi is first  # one session for both calls
    monkeypatch.setattr(ipmi_driver, "SESSION_IDLE", 0.0)
    assert await client.power_state() is PowerState.ON
    assert client._ipmi is not first
    await client.close()
    assert client._ipmi is None
    assert await client.power_state() is PowerState.ON  # opens a new one


async def test_dead_session_is_reopened_for_reads(client: IpmiClient) -> None:
    await client.power_state()
    stale = client._ipmi
    stale.session.sid ^= 0x5A5A5A5A  # the BMC forgot our session: no answer
    assert await client.power_state() is PowerState.OFF
    assert client._ipmi is not stale


async def test_dead_session_reset_is_not_repeated(client: IpmiClient, sim: Sim) -> None:
    sim.reset_chassis(power="1")
    await client.power_state()
    client._ipmi.session.sid ^= 0x5A5A5A5A
    with pytest.raises(BmcUnreachableError, match="no answer"):
        await client.reset()
    assert sim.resets == 0
    await client.reset()  # a new session
    assert sim.resets == 1


async def test_one_call_at_a_time_even_when_the_caller_gives_up(
    executor: Executor,
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        client = IpmiClient(
            HOST,
            "admin",
            "password",
            port=silent.getsockname()[1],
            timeout=0.5,
            executor=executor,
        )
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await client.power_state()
        assert client._lock.locked()  # the worker still waits for the BMC
        second = asyncio.ensure_future(client.power_state())
        await asyncio.sleep(0.1)
        assert not second.done()  # it waits for the first call's end, then its own
        with pytest.raises(BmcUnreachableError):
            await second
        await client.close()


# End to end: a resource on the BMC, driven by the core pass by pass


async def test_resource_on_the_bmc_through_the_core(
    client: IpmiClient, sim: Sim
) -> None:
    clock = FakeClock()
    events: list[LabEvent] = []
    lab = Lab(clock=clock, listener=events.append, sleep=clock.sleep)
    policy = ResourcePolicy(off_delay=0, min_off_time=0, stop_timeout=90)
    lab.add(ResourceSpec(name="server", feeds=(BmcSwitcher(client),), policy=policy))
    reconciler = lab.reconciler("server")

    def actions() -> list[PowerAction | None]:
        return [e.action for e in events if e.kind is EventKind.POWER_CHANGED]

    async def cycle_once() -> None:
        token = lab.acquire(["server"], "ci")[0]
        await reconciler.reconcile_once()
        assert sim.power == "1"
        await reconciler.reconcile_once()
        assert reconciler.state is ResourceState.AVAILABLE
        lab.release([token.id])
        await reconciler.reconcile_once()

    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.OFF

    # The OS shuts down when asked.
    await cycle_once()
    assert reconciler.state is ResourceState.STOPPING
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.OFF
    assert actions() == [PowerAction.ON, PowerAction.GRACEFUL_OFF]
    assert sim.calls == ["power 1", "shutdown 1"]

    # The OS ignores the soft off: forced off after stop_timeout.
    sim.reset_chassis(soft_off="ignore")
    await cycle_once()
    assert reconciler.state is ResourceState.STOPPING
    clock.advance(60)
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.STOPPING
    assert sim.power == "1"
    clock.advance(31)
    await reconciler.reconcile_once()
    assert reconciler.state is ResourceState.OFF
    assert sim.power == "0"
    assert sim.calls == ["power 1", "shutdown 1", "power 0"]
    assert actions()[-3:] == [
        PowerAction.ON,
        PowerAction.GRACEFUL_OFF,
        PowerAction.FORCED_OFF,
    ]


# Behaviour no simulator shows: a stand-in for the established pyipmi session


@dataclass
class FakeIpmi:
    """What the client uses of a pyipmi.Ipmi: every request fails or answers as set."""

    error: Exception | None = None
    reading: Any = None
    close_error: Exception | None = None
    closed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """The session and interface parts."""
        self.session = SimpleNamespace(close=self._close_session)
        self.interface = SimpleNamespace(
            set_timeout=lambda timeout: None,
            close=lambda: self.closed.append("socket"),
        )

    def _close_session(self) -> None:
        if self.close_error is not None:
            raise self.close_error
        self.closed.append("session")

    def get_chassis_status(self) -> Any:
        """Fail as told."""
        assert self.error is not None
        raise self.error

    def get_power_reading(self, mode: int) -> Any:
        """The reading set, or the error."""
        assert mode == 1
        if self.error is not None:
            raise self.error
        return self.reading


def with_session(client: IpmiClient, ipmi: FakeIpmi) -> FakeIpmi:
    """Make `ipmi` the client's established, fresh session."""
    client._ipmi = ipmi
    client._last_used = time.monotonic()
    return ipmi


async def test_dcmi_power_reading(executor: Executor) -> None:
    client = IpmiClient(HOST, "admin", "password", executor=executor)
    with_session(
        client, FakeIpmi(reading=SimpleNamespace(current_power=87, reading_state=0x40))
    )
    assert await client.power_reading() == 87.0
    # Measurement not active (bit 6 clear): no reading.
    with_session(
        client, FakeIpmi(reading=SimpleNamespace(current_power=0, reading_state=0))
    )
    assert await client.power_reading() is None
    with_session(client, FakeIpmi(error=CompletionCodeError(0xC3)))
    with pytest.raises(TransientSwitchError, match="completion code 0xc3"):
        await client.power_reading()


@pytest.mark.parametrize(
    ("error", "expected", "message", "dropped"),
    [
        (
            CompletionCodeError(0xFF),
            TransientSwitchError,
            "completion code 0xff",
            False,
        ),
        (MessageStatusCodeError(0x01), TransientSwitchError, "status 0x01", False),
        (NotSupportedError("no IPMI 2.0"), ConfigurationSwitchError, "no IPMI", False),
        (DecodingError("short SDU"), TransientSwitchError, "short SDU", True),
        # In an established session: a garbled message, not the credentials.
        (
            AuthenticationError("RMCP+ integrity check failed"),
            TransientSwitchError,
            "integrity",
            True,
        ),
    ],
)
async def test_error_mapping(
    executor: Executor,
    error: Exception,
    expected: type[Exception],
    message: str,
    dropped: bool,
) -> None:
    client = IpmiClient(HOST, "admin", "password", executor=executor)
    fake = with_session(client, FakeIpmi(error=error))
    with pytest.raises(expected, match=message) as caught:
        await client.power_state()
    assert not isinstance(caught.value, BmcAuthError | BmcUnreachableError)
    assert (client._ipmi is None) is dropped
    assert fake.closed == (["socket"] if dropped else [])


async def test_close_when_the_bmc_does_not_answer(executor: Executor) -> None:
    client = IpmiClient(HOST, "admin", "password", executor=executor)
    fake = with_session(client, FakeIpmi(close_error=RetryError()))
    await client.close()  # no error: the BMC ends the session by itself
    assert fake.closed == ["socket"]
    assert client._ipmi is None


async def test_executor_refusing_work_leaves_the_lock_free() -> None:
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()

    def run[T](func: Callable[[], T]) -> Awaitable[T]:
        return asyncio.get_running_loop().run_in_executor(pool, func)

    client = IpmiClient(HOST, "admin", "password", executor=run)
    with pytest.raises(RuntimeError, match="shutdown"):
        await client.power_state()
    assert not client._lock.locked()


async def test_cancelled_job_leaves_the_lock_free() -> None:
    jobs: list[asyncio.Future[Any]] = []

    def never_run[T](func: Callable[[], T]) -> Awaitable[T]:
        job: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        jobs.append(job)
        return job

    client = IpmiClient(HOST, "admin", "password", executor=never_run)
    call = asyncio.ensure_future(client.power_state())
    await asyncio.sleep(0)
    assert client._lock.locked()
    jobs[0].cancel()  # e.g. Home Assistant stopping
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not client._lock.locked()
