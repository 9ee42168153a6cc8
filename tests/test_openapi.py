"""The REST API against docs/openapi.yaml: schemathesis on Home Assistant's real HTTP server.

Schemathesis's own engine runs every phase (the spec's examples, coverage, fuzzing and
stateful, through acquire's links to renew and release) with every check it has but
max_response_time: no 5xx; documented status codes, content types, headers and bodies;
schema-valid requests accepted and invalid ones refused; undeclared methods answered 405
with `Allow`; each request without or with a wrong access token refused; a released token
gone, a new one found. It runs once as a non-admin CI user and once as an administrator
(force_off's 403 and 200, another user's token's 403).

How the cases reach something real:
- path parameters: a flatmap hook draws `name` from real resources, an unknown one and the
  generated text; a body's `token` (renew, release) comes from the tokens the server really
  issued in this run (live, released or revoked) or the generated text; without them nearly
  every case would be a 404;
- the pool's labels and count: a flatmap hook draws labels that exist and counts that fit;
- `wait`: every resource has checker none, so it is available as soon as its relay is on, and a
  map hook sets `timeout` to 5 s whenever a body asks to wait (the spec allows up to 86400 s,
  and a generated 1e-9 s could time out for real), so a 504 would be a bug here too.

Deterministic: derandomized generation, one worker, no example database. The blocking
engine runs in an executor thread while the event loop serves it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
import re
import time
from typing import Any
from unittest.mock import patch

from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from hypothesis import strategies as st
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
import schemathesis
from schemathesis.engine import Status, events, from_schema
import yaml

from .conftest import resource_data

_LOGGER = logging.getLogger(__name__)

SPEC = Path(__file__).parent.parent / "docs" / "openapi.yaml"
# Every check but max_response_time, which is off unless given a limit (no timing asserts
# in tests; benchmarks/ has those).
ALL_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "use_after_free",
    "ensure_resource_availability",
    "missing_required_header",
    "ignored_auth",
    "object_level_authorization",
    "unsupported_method",
    "allow_header_conformance",
}
# An unknown machine is a 400 to MAAS's webhooks by design: its driver reads a 404 as a
# success (see maas.py); that is the one schema-valid request refused with a 400.
_ACCEPTED = ["2xx", "401", "403", "404", "409", "429", "503", "504"]
CONFIG: dict[str, Any] = {
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": True},
    },
    "checks": {
        "positive_data_acceptance": {"expected-statuses": _ACCEPTED},
    },
    "operations": [
        {
            "include-path-regex": "^/api/labpower/maas/",
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [*_ACCEPTED, "400"]}
            },
        },
        # Bookings have no links: kept out of the stateful phase, whose steps then go
        # to acquire's links (renew, release) as before; every other phase runs them.
        {
            "include-path-regex": "^/api/labpower/bookings",
            "phases": {"stateful": {"enabled": False}},
        },
    ],
}
NAMES = ["builder-1", "builder-2", "pi-1", "pi-2", "nope"]
RACKS = [f"rack-{i}" for i in range(1, 6)]
POOL = "POST /api/labpower/tokens"
TOKEN_BODIES = ("POST /api/labpower/tokens/release", "POST /api/labpower/tokens/renew")
WAIT_TIMEOUT = 5.0
MAX_EXAMPLES = 40
# Every operation in the spec (test_every_path_needs_a_token sends each one).
ORDER = [
    "listResources",
    "getResource",
    "acquire",
    "acquirePool",
    "listQueue",
    "renew",
    "maasOn",
    "maasQuery",
    "maasOff",
    "powerCycle",
    "release",
    "forceOff",
    "listBookings",
    "book",
    "deleteBooking",
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
    checked: Counter[str] = field(default_factory=Counter)
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
        and all(isinstance(label, str) and 0 < len(label) <= 255 for label in value)
    )


def _schema(run: Run, user: str) -> Any:
    """The spec, pointed at the test server as this user, with the hooks that steer cases."""
    schema = schemathesis.openapi.from_path(
        SPEC, config=schemathesis.Config.from_dict(CONFIG)
    )
    schema.config.update(
        base_url=run.base_url,
        headers={"Authorization": f"Bearer {run.users[user]}"},
        workers=1,
    )
    schema.config.generation.update(
        max_examples=MAX_EXAMPLES, deterministic=True, database="none"
    )

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
                [["rack"], body["labels"], ["rack"], ["arm64"], ["arm64", "gpio"]]
            )
        if "count" not in body or _is_count(body["count"]):
            choices["count"] = st.sampled_from([1, body.get("count", 1), 2])
        return st.fixed_dictionaries(choices).map(lambda chosen: {**body, **chosen})

    @schema.hook("map_body")
    def short_waits(context: schemathesis.HookContext, body: Any) -> Any:
        """Wait 5 s at most; an invalid timeout is left for the server to refuse.

        Not in the queue: the run holds what it asks for, so a queued request would
        end in a 504 (its timeout, by design), which counts as a server error here.
        test_queue.py waits in the queue through the REST API.
        """
        if isinstance(body, dict) and body.get("queue") is True:
            body = {**body, "queue": False}
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


def _engine(run: Run, user: str) -> None:
    """Schemathesis's engine as one user: every phase, every check; failures collected.

    The phases: the spec's examples, coverage (boundary values, every undeclared method,
    each required part left out, no or a wrong access token), fuzzing (positive and
    negative) and stateful (acquire's links to renew and release: a released token
    must be gone, a new one found).
    """
    schema = _schema(run, user)
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    run.checked[check.name] += 1
                    if check.status is Status.FAILURE and check.failure_info:
                        run.failures.append(
                            f"{event.phase} {event.label} as {user}: {check.name}: "
                            f"{check.failure_info.failure.title}: {check.failure_info.failure.message}\n"
                            f"{check.failure_info.code_sample}"
                        )
            for case_id, interaction in event.recorder.interactions.items():
                if interaction.response is None:
                    continue
                node = event.recorder.cases[case_id]
                status = interaction.response.status_code
                run.sent += 1
                run.statuses[node.value.operation.label, str(event.phase), status] += 1
                _note_tokens(run, node.value.body, interaction.response)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            run.failures.append(f"{type(event).__name__} as {user}: {event!r}")


def _note_tokens(run: Run, body: Any, response: Any) -> None:
    """Remember the tokens a 201 issued (later cases use them by id)."""
    if response.status_code != 201:
        return
    if isinstance(body, dict) and body.get("wait") is True:
        run.waited += 1
    answer = json.loads(response.content)
    run.tokens.extend(token["token"] for token in answer.get("tokens", [answer]))


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
        for user in sorted(users):
            await hass.async_add_executor_job(_engine, run, user)
    _LOGGER.info(
        "%d requests in %.1f s; checks run: %s\n%s",
        run.sent,
        time.monotonic() - started,
        dict(run.checked),
        "\n".join(
            f"{label} [{phase}] {status}: {count}"
            for (label, phase, status), count in sorted(run.statuses.items())
        ),
    )
    assert not run.failures, "\n\n".join(run.failures)
    # Every check of schemathesis's ran, not only the four of old.
    assert set(run.checked) >= ALL_CHECKS, ALL_CHECKS - set(run.checked)
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
            count
            for (seen, _, status), count in run.statuses.items()
            if seen == label and status in (200, 201, 204)
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
