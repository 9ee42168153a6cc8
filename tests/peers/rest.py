"""The REST API as a test calls it: requests under /api/labpower, JSON errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

type Api = Callable[..., Awaitable[ClientResponse]]


async def rest_api(client_factory: ClientSessionGenerator, token: str | None) -> Api:
    """Requests to /api/labpower as the user of `token` (None: no token)."""
    client = await client_factory()
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    async def request(
        method: str, path: str, json: Any = None, data: Any = None
    ) -> ClientResponse:
        return await client.request(
            method, f"/api/labpower{path}", json=json, data=data, headers=headers
        )

    return request


async def error_of(response: ClientResponse, status: int) -> dict[str, Any]:
    """The JSON error of a response with this status."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    return body["error"]
