"""The REST API against docs/openapi.yaml: schemathesis on Home Assistant's real HTTP server.

Every operation in the spec gets cases that hypothesis generates from the spec itself: valid
ones (positive) and, where there is a body, invalid ones (negative). Every response must be no
5xx and carry a documented status code, content type and body; an invalid body must be refused.

How the cases reach something real:
- path parameters: a flatmap hook draws `name` from real resources, an unknown one and the
  generated text; a body's `token` (renew, release) comes from the tokens the server really
  issued in this run (live, released or revoked) or the generated text; without them nearly
  every case would be a 404;
- the pool's labels and count: a flatmap hook draws labels that exist and counts that fit;
- every case goes as a non-admin CI user or as an administrator (force_off's 403 and 200);
  schemathesis's own security parameters are off, test_every_path_needs_a_token covers auth;
- `wait`: every resource has checker none, so it is available as soon as its relay is on, and a
  map hook sets `timeout` to 5 s whenever a body asks to wait (the spec allows up to 86400 s,
  and a generated 1e-9 s could time out for real), so a 504 would be a bug here too.

Deterministic: derandomized hypothesis, a fixed operation order, no example database. The
blocking `requests` calls run in an executor thread while the event loop serves them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import logging
from pathlib import Path
import re
import time
from typing import Any
from unittest.mock import patch

from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
import yaml

from .conftest import resource_data

_LOGGER = logging.getLogger(__name__)

SPEC = Path(__file__).parent.parent / "docs" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NAMES = ["builder-1", "builder-2", "pi-1", "pi-2", "nope"]
RACKS = [f"rack-{i}" for i in range(1, 6)]
POOL = "POST /api/labpower/tokens"
TOKEN_BODIES = ("POST /api/labpower/tokens/release", "POST /api/labpower/tokens/renew")
WAIT_TIMEOUT = 5.0
MAX_EXAMPLES = 40
# Releases and force_off late, so that renew and the MAAS webhooks meet live tokens.
ORDER = [
    "listResources",
    "getResource",
    "acquire",
    "acquirePool",
    "renew",
    "maasOn",
    "maasQuery",
    "maasOff",
    "powerCycle",
    "release",
    "forceOff",
]

# Home Assistant's event loop thread uses the global `random` (random_uuid_hex) while
# hypothesis draws in the executor thread; hypothesis may then take it for a strategy's.
RANDOM_RACE = (
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)


@dataclass
class Run:
    """What the hooks and the cases share: users, the tokens issued so far, the outcomes."""

    base_url: str
    users: dict[str, str]
    tokens: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    sent: int = 0
    waited: int = 0
    failures: list[str] = field(default_factory=list)


async def _user_token(hass: HomeAssistant, name: str) -> str:
    """A long-lived access token of a new non-admin user."""
    user = await hass.auth.async_create_user(name, group_ids=["system-users"])
    refresh = await hass.auth.async_create_refresh_token(
        user, client_name=name, token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
    )
    return hass.auth.async_create_access_token(refresh)


@pytest.fixture
def lab_resources() -> list[dict[str, Any]]:
    """Relays (input_boolean) and checker none: powered means available, at once.

    builder-1/2 (x86_64) and pi-1/2 (arm64, pi-2 also gpio) are drawn by name; rack-1 to 5
    (rack) only by the pool, so that it still finds free resources late in the run.
    """
    return [
        resource_data("builder-1", labels=["x86_64"]),
        resource_data("builder-2", labels=["x86_64"]),
        resource_data("pi-1", labels=["arm64"]),
        resource_data("pi-2", labels=["arm64", "gpio"]),
        *(resource_data(rack, labels=["rack"]) for rack in RACKS),
    ]


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1000


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 255


def _is_labels(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(label, str) and label for label in value)
    )


def _schema(run: Run) -> Any:
    """The spec, pointed at the test server, with the hooks that steer the cases."""
    schema = schemathesis.openapi.from_path(SPEC, config=schemathesis.Config())
    schema.config.update(base_url=run.base_url)
    schema.config.generation.update(with_security_parameters=False)

    @schema.hook("flatmap_path_parameters")
    def real_path_parameters(
        context: schemathesis.HookContext, parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        if not parameters:
            return st.just(parameters)
        choices: dict[str, st.SearchStrategy[Any]] = {}
        for key, generated in parameters.items():
            if key == "name":
                choices[key] = st.sampled_from([*NAMES, generated])
            else:
                choices[key] = st.just(generated)
        return st.fixed_dictionaries(choices)

    @schema.hook("flatmap_body")
    def real_bodies(
        context: schemathesis.HookContext, body: Any
    ) -> st.SearchStrategy[Any]:
        """Token ids the server issued; pool labels that exist and counts that fit.

        Only values that are valid already are replaced: a negative case stays negative.
        """
        if context.operation is None or not isinstance(body, dict):
            return st.just(body)
        if context.operation.label in TOKEN_BODIES:
            if not _is_token(body.get("token")):
                return st.just(body)
            # The list grows while the run issues tokens: index it when drawing.
            issued = st.integers(0, 1_000).map(
                lambda i: run.tokens[i % len(run.tokens)]
            )
            return st.one_of(issued, st.just(body["token"])).map(
                lambda token: {**body, "token": token}
            )
        if context.operation.label != POOL:
            return st.just(body)
        choices: dict[str, st.SearchStrategy[Any]] = {}
        if _is_labels(body.get("labels")):
            choices["labels"] = st.sampled_from(
                [body["labels"], ["rack"], ["rack"], ["arm64"], ["arm64", "gpio"]]
            )
        if "count" not in body or _is_count(body["count"]):
            choices["count"] = st.sampled_from([body.get("count", 1), 1, 2])
        return st.fixed_dictionaries(choices).map(lambda chosen: {**body, **chosen})

    @schema.hook("map_body")
    def short_waits(context: schemathesis.HookContext, body: Any) -> Any:
        """Wait 5 s at most; an invalid timeout is left for the server to refuse."""
        if isinstance(body, dict) and body.get("wait") is True:
            timeout = body.get("timeout")
            if "timeout" not in body or (
                isinstance(timeout, int | float)
                and not isinstance(timeout, bool)
                and 0 < timeout <= 86400
            ):
                body = {**body, "timeout": WAIT_TIMEOUT}
        return body

    return schema


def _fuzz_operation(
    run: Run,
    session: requests.Session,
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
) -> None:
    """Send hypothesis's cases for one operation; failures are collected, not raised."""
    checks = CHECKS if mode.is_positive else [*CHECKS, negative_data_rejection]

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        user=st.sampled_from(sorted(run.users)),
    )
    def send(case: schemathesis.Case, user: str) -> None:
        run.sent += 1
        try:
            response = case.call_and_validate(
                session=session,
                headers={"Authorization": f"Bearer {run.users[user]}"},
                checks=checks,
                timeout=30,
            )
        except (AssertionError, FailureGroup) as err:
            run.failures.append(f"{operation.label} [{mode}] as {user}: {err}")
            return
        run.statuses[operation.label, mode.value, response.status_code] += 1
        if response.status_code == 201:
            if isinstance(case.body, dict) and case.body.get("wait") is True:
                run.waited += 1
            body = response.json()
            run.tokens.extend(token["token"] for token in body.get("tokens", [body]))

    send()


def _fuzz(run: Run) -> None:
    """Every operation in ORDER; both generation modes where there is a body."""
    schema = _schema(run)
    operations: dict[str, schemathesis.APIOperation] = {}
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations[schema.get_operation_id(result.ok())] = result.ok()
    assert sorted(operations) == sorted(ORDER)
    with requests.Session() as session:
        session.trust_env = False  # no proxy for 127.0.0.1
        for operation_id in ORDER:
            operation = operations[operation_id]
            _fuzz_operation(run, session, operation, GenerationMode.POSITIVE)
            # Path parameters are any string: only a body can be invalid.
            if len(operation.body):
                _fuzz_operation(run, session, operation, GenerationMode.NEGATIVE)


@pytest.mark.filterwarnings(RANDOM_RACE)
@pytest.mark.usefixtures("socket_enabled", "init_integration")
async def test_api_conforms_to_openapi(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
) -> None:
    client = await hass_client()
    users = {"admin": hass_access_token, "ci": await _user_token(hass, "ci bot")}
    run = Run(base_url=str(client.make_url("")).rstrip("/"), users=users)
    # Tokens to find by id from the start: a live lease, a live hold, a released one.
    for name, body in (
        ("builder-2", {"ttl": 600}),
        ("pi-2", {"kind": "hold"}),
        ("pi-1", {}),
    ):
        response = await client.post(
            f"/api/labpower/resources/{name}/tokens", json=body
        )
        assert response.status == 201
        run.tokens.append((await response.json())["token"])
    released = await client.post(
        "/api/labpower/tokens/release", json={"token": run.tokens[-1]}
    )
    assert released.status == 204

    started = time.monotonic()
    # Power cycles without their 5 s pause: hypothesis sends many.
    with patch("custom_components.labpower.core.reconciler.Timing.cycle_delay", 0):
        await hass.async_add_executor_job(_fuzz, run)
    _LOGGER.info(
        "%d cases in %.1f s:\n%s",
        run.sent,
        time.monotonic() - started,
        "\n".join(
            f"{label} [{mode}] {status}: {count}"
            for (label, mode, status), count in sorted(run.statuses.items())
        ),
    )
    assert not run.failures, "\n\n".join(run.failures)
    assert not [key for key in run.statuses if key[2] == 401]  # our token always went
    assert run.waited, "no case waited until available"
    # The hooks make the run reach real resources and tokens, not only 404s.
    for label in (
        "GET /api/labpower/resources/{name}",
        "POST /api/labpower/resources/{name}/tokens",
        "POST /api/labpower/tokens",
        *TOKEN_BODIES,
        "POST /api/labpower/maas/{name}/on",
        "POST /api/labpower/resources/{name}/force_off",
    ):
        assert any(
            run.statuses[label, "positive", status] for status in (200, 201, 204)
        ), label


def _paths() -> list[tuple[str, str]]:
    """Every method and path in the spec, with a real resource name in path parameters."""
    spec = yaml.safe_load(SPEC.read_text())
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), re.sub(r"\{\w+\}", "builder-1", path))
        for path, item in spec["paths"].items()
        for method in item
        if method in methods
    ]


@pytest.mark.usefixtures("socket_enabled", "init_integration")
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic e30="])
async def test_every_path_needs_a_token(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    authorization: str | None,
) -> None:
    client = await hass_client_no_auth()
    headers = {} if authorization is None else {"Authorization": authorization}
    paths = _paths()
    assert len(paths) == len(ORDER)
    for method, path in paths:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status == 401, (method, path)
    await hass.async_block_till_done()
    holders = hass.states.get("sensor.lab_holders")
    assert holders is not None
    assert holders.state == "0"


@pytest.mark.usefixtures("socket_enabled", "init_integration")
@pytest.mark.parametrize(
    ("path", "body"),
    [
        # A lone surrogate was taken: the token's holder then broke every response that
        # showed it (500) and the ledger's store.
        pytest.param(
            "/resources/builder-1/tokens",
            rb'{"holder": "\ud800"}',
            id="lone-surrogate-holder",
        ),
        pytest.param("/tokens", rb'{"labels": ["\udc80"]}', id="lone-surrogate-label"),
        # Deeper than json.loads's recursion limit: a RecursionError, 500.
        pytest.param(
            "/resources/builder-1/tokens",
            b'{"holder": ' + b"[" * 100_000,
            id="deep-nesting",
        ),
        # null was taken for "not given": this one answered at once instead of waiting.
        pytest.param(
            "/resources/builder-1/tokens",
            b'{"wait": true, "timeout": null}',
            id="wait-timeout-null",
        ),
        pytest.param("/resources/builder-1/tokens", b'{"ttl": null}', id="ttl-null"),
        pytest.param(
            "/resources/builder-1/tokens", b'{"holder": null}', id="holder-null"
        ),
        pytest.param(
            "/tokens", b'{"labels": ["rack"], "ttl": null}', id="pool-ttl-null"
        ),
        pytest.param("/resources/builder-1/tokens", b'{"ttl": NaN}', id="nan"),
        pytest.param("/resources/builder-1/tokens", b'{"ttl": 1e400}', id="infinity"),
        pytest.param("/resources/builder-1/tokens", b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(
            "/resources/builder-1/tokens",
            '{"holder": "\u00fc"}'.encode("utf-16"),
            id="utf-16",
        ),
    ],
)
async def test_bodies_json_cannot_carry_are_refused(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, path: str, body: bytes
) -> None:
    """Found around the schemathesis run: what hypothesis's JSON never contains."""
    client = await hass_client()
    response = await client.post(
        f"/api/labpower{path}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()
    assert (await response.json())["error"]["code"] == "bad_request"
    detail = await client.get("/api/labpower/resources/builder-1")
    assert detail.status == 200
    assert (await detail.json())["holders"] == 0
