"""Who holds what, end to end: a real Home Assistant with the demo lab, in a real Chromium.

Ada (the owner) takes a hold from the rack card: her name and the time left show on the
tile and in the overview card, and Bob (another user, logged in his own browser) sees
them too. Ada renews and releases from the overview. With a 2-minute UI hold maximum,
Bob's hold is reminded (a persistent notification, in his browser's notifications) and
then released. The overview's columns line up and an open filter stays open while states
change; a resource's device page shows its Holders count and labpower's Activity. Screenshots go to a
temporary folder (scripts/screenshots writes them into docs/images).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
import re
import time
from typing import Any

from playwright.async_api import Page, expect
import pytest

from .peers.chromium import CHROMIUM, chromium, open_logged_in
from .peers.hass_process import OWNER, Server, home_assistant, screenshot_dir

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(300),  # a 2-minute hold runs out in real time
]

OVERVIEW = "lab-rack/overview"
WIDE = {"width": 1000, "height": 760}
BOB = "Bob"
TOKENS = '.cell[data-col="tokens"]'


async def login_user(server: Server, name: str, username: str) -> Server:
    """A non-admin user made through the admin's websocket, logged in: his Server."""
    [user] = await server.websocket(
        {"type": "config/auth/create", "name": name, "group_ids": ["system-users"]}
    )
    user_id = user["user"]["id"]
    await server.websocket(
        {
            "type": "config/auth_provider/homeassistant/create",
            "user_id": user_id,
            "username": username,
            "password": "overview-test",
        }
    )
    client_id = f"{server.url}/"
    async with server.session.post(
        f"{server.url}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": client_id,
        },
    ) as response:
        flow = await response.json()
    async with server.session.post(
        f"{server.url}/auth/login_flow/{flow['flow_id']}",
        json={
            "client_id": client_id,
            "username": username,
            "password": "overview-test",
        },
    ) as response:
        result = await response.json()
        assert result.get("type") == "create_entry", result
    async with server.session.post(
        f"{server.url}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": result["result"],
            "client_id": client_id,
        },
    ) as response:
        assert response.status == 200, await response.text()
        tokens: dict[str, Any] = await response.json()
    return replace(server, tokens=tokens)


async def set_ui_hold_max(server: Server, seconds: float) -> None:
    """The lab's options flow, through the REST API as the frontend drives it."""
    [entries] = await server.websocket(
        {"type": "config_entries/get", "domain": "labpower"}
    )
    entry_id = entries[0]["entry_id"]
    base = f"{server.url}/api/config/config_entries/options/flow"
    async with server.session.post(
        base, headers=server.headers, json={"handler": entry_id}
    ) as response:
        form = await response.json()
    values: dict[str, Any] = {}
    for field in form["data_schema"]:
        suggested = (field.get("description") or {}).get("suggested_value")
        if suggested is not None:
            values[field["name"]] = suggested
    values["ui_hold_max"] = seconds
    async with server.session.post(
        f"{base}/{form['flow_id']}", headers=server.headers, json=values
    ) as response:
        done = await response.json()
        assert done["type"] == "create_entry", done


@contextlib.asynccontextmanager
async def one_page(server: Server, path: str, **context: Any) -> AsyncIterator[Page]:
    """`path` in Chromium, as the owner; no request went off 127.0.0.1 (checked after)."""
    refused: list[str] = []
    async with chromium() as browser:
        yield await open_logged_in(browser, server, refused, path, **context)
    assert refused == [], refused


def overview_row(page: Page, name: str) -> Any:
    return page.locator(f'labpower-overview-card .row[data-resource="{name}"]')


async def column_edges(page: Page) -> list[list[float]]:
    """For the header and each row of the overview: where each of its cells starts."""
    edges: list[list[float]] = await page.locator("labpower-overview-card").evaluate(
        "card => [...card.shadowRoot.querySelectorAll('.head, .row')].map(row =>"
        " [...row.children].map(cell => Math.round(cell.getBoundingClientRect().left)))"
    )
    return edges


async def test_overview_keeps_an_open_filter_while_states_update(
    tmp_path: Path,
) -> None:
    """A state change redraws the rows, not the filters: an open <select> stays open.

    The Label filter is chosen and then focused (as when its options are open); holds taken
    meanwhile (by the REST API) show up in the rows live, and the filter is the same element,
    still focused, with its value, and the rows keep to it.
    """
    async with (
        home_assistant(tmp_path) as server,
        one_page(server, OVERVIEW, viewport=WIDE) as page,
    ):
        card = page.locator("labpower-overview-card")
        await expect(overview_row(page, "builder-1")).to_be_visible(timeout=20000)
        # the columns line up: every row's cells start where the header's do
        edges = await column_edges(page)
        assert len(edges) == 6, edges
        assert all(row == edges[0] for row in edges), edges
        label = card.locator('select[data-filter="label"]')
        await label.select_option("maas")
        await expect(card.locator(".row")).to_have_count(1)
        await label.focus()
        await label.evaluate("select => { select.dataset.probe = 'kept'; }")
        for name in ("pi-maas", "builder-2"):
            await server.action("acquire", {"resource": name, "holder": f"ci-{name}"})
        await expect(overview_row(page, "pi-maas").locator(TOKENS)).to_contain_text(
            "ci-pi-maas", timeout=20000
        )
        await page.wait_for_timeout(1000)  # builder-2's changes arrive too
        await expect(card.locator(".row")).to_have_count(1)
        assert await label.evaluate(
            "select => [select.dataset.probe, select.value,"
            " select.getRootNode().activeElement === select]"
        ) == ["kept", "maas", True]


async def test_device_page_in_chromium_holders_and_activity(tmp_path: Path) -> None:
    """A resource's device page: its Holders count and its Activity.

    The Holders sensor reads "Holders 5" (a count, no unit); the Activity card has
    labpower's entries with who caused them, a burst of jobs in one.
    """
    screenshots = screenshot_dir(tmp_path)
    async with home_assistant(tmp_path) as server:
        # five jobs at once: the first is an entry at once, the four others one entry
        await asyncio.gather(
            *(
                server.action("acquire", {"resource": "builder-2", "holder": f"ci {n}"})
                for n in range(1, 6)
            )
        )
        [devices] = await server.websocket({"type": "config/device_registry/list"})
        [device] = [d for d in devices if d["name"] == "builder-2"]
        # HA's logbook takes labpower's descriptions in (its logbook platform) once started:
        # until then a subscription by device has none of labpower's events.
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        for _ in range(60):
            [entries] = await server.websocket(
                {
                    "type": "logbook/get_events",
                    "start_time": since,
                    "device_ids": [device["id"]],
                }
            )
            if any(e.get("domain") == "labpower" for e in entries):
                break
            await asyncio.sleep(0.5)
        path = f"config/devices/device/{device['id']}"
        async with one_page(
            server, path, viewport={"width": 1200, "height": 1000}
        ) as page:
            holders = page.locator(
                "ha-device-entities-card hui-generic-entity-row", has_text="Holders"
            )
            await expect(holders).to_be_visible(timeout=20000)
            # the row is named Holders (has_text sees its shadow DOM); its value: 5, no unit
            assert (await holders.inner_text()).split() == ["5"]
            activity = page.locator("ha-card", has=page.locator("ha-logbook"))
            for entry in (
                re.compile(r"^was acquired by ci \d$"),
                re.compile(r"^was powered on \(acquired by ci \d\)$"),
                re.compile(r"^was acquired by ci \d, ci \d, ci \d and ci \d$"),
            ):
                await expect(activity.get_by_text(entry)).to_be_visible(timeout=20000)
            await activity.screenshot(
                path=screenshots / "device-activity.png", animations="disabled"
            )


async def test_holds_in_chromium_rack_card_and_overview(tmp_path: Path) -> None:
    screenshots = screenshot_dir(tmp_path)
    async with home_assistant(tmp_path) as server:
        bob = await login_user(server, BOB, "bob")
        refused: list[str] = []
        async with chromium() as browser:
            ada = await open_logged_in(
                browser,
                server,
                refused,
                "lab-rack/0",
                viewport=WIDE,
            )
            tile = ada.locator('labpower-rack-card .tile[data-resource="builder-1"]')
            await expect(tile).to_be_visible(timeout=20000)
            await tile.click()
            dialog = ada.locator("ha-more-info-dialog")
            toggle = dialog.locator("ha-control-switch, [role='switch']").first
            await expect(toggle).to_be_visible(timeout=10000)
            await toggle.click()
            # Her name and the time left (the 12 h default) on the tile...
            await expect(tile.locator(".who")).to_contain_text(OWNER, timeout=10000)
            await expect(tile.locator(".who")).to_contain_text("left")
            assert "12 h" in (await tile.locator(".who").inner_text()) or "11 h" in (
                await tile.locator(".who").inner_text()
            )
            title = await tile.get_attribute("title")
            assert title is not None
            assert f"• {OWNER} (hold, " in title
            await ada.keyboard.press("Escape")

            # ...and in the overview, with Renew and Release for her.
            await ada.goto(f"{server.url}/{OVERVIEW}")
            row = overview_row(ada, "builder-1")
            await expect(row.locator(TOKENS)).to_contain_text(OWNER, timeout=20000)
            await expect(row.locator(TOKENS)).to_contain_text("mine")
            await expect(row.locator('[data-action="renew"]')).to_be_visible()
            edges = await column_edges(ada)
            assert all(row == edges[0] for row in edges), edges
            # A bench job queued for builder-1 to itself: shown waiting, in its place.
            queued = asyncio.ensure_future(
                server.session.post(
                    f"{server.url}/api/labpower/resources/builder-1/tokens",
                    headers=server.headers,
                    json={"holder": "bench", "exclusive": True, "queue": True},
                )
            )
            await expect(row.locator(f"{TOKENS} .queued")).to_contain_text(
                "waiting #1: bench (exclusive)", timeout=20000
            )
            queued.cancel()  # the caller goes away: it leaves the queue
            await expect(row.locator(f"{TOKENS} .queued")).to_have_count(
                0, timeout=20000
            )
            await ada.locator("labpower-overview-card").screenshot(
                path=screenshots / "overview-card.png", animations="disabled"
            )

            # Bob sees Ada's hold, without actions on it (no Renew/Release, no Force off).
            bobs = await open_logged_in(
                browser, bob, refused, OVERVIEW, viewport={"width": 390, "height": 1000}
            )
            bob_row = overview_row(bobs, "builder-1")
            await expect(bob_row.locator(TOKENS)).to_contain_text(OWNER, timeout=20000)
            await expect(bob_row.locator('[data-action="renew"]')).to_have_count(0)
            await expect(bob_row.locator('[data-action="force_off"]')).to_have_count(0)
            await expect(bob_row.locator('[data-action="hold"]')).to_be_visible()
            card = bobs.locator("labpower-overview-card")
            overflow = await card.evaluate(
                "card => { const c = card.shadowRoot.querySelector('ha-card');"
                " return c.scrollWidth - c.clientWidth; }"
            )
            assert overflow <= 0
            await card.screenshot(
                path=screenshots / "overview-card-phone.png", animations="disabled"
            )

            # Renew from the overview moves the expiry; Release ends the hold.
            before = await server.get("/api/labpower/resources/builder-1")
            await asyncio.sleep(1.1)
            await row.locator('[data-action="renew"]').click()
            await ada.wait_for_timeout(1500)
            after = await server.get("/api/labpower/resources/builder-1")
            assert after["tokens"][0]["expires"] > before["tokens"][0]["expires"]
            await row.locator('[data-action="release"]').click()
            await expect(row.locator(TOKENS)).to_contain_text("nobody", timeout=10000)
            await expect(bob_row.locator(TOKENS)).to_contain_text(
                "nobody", timeout=10000
            )

            # Dark theme.
            dark = await open_logged_in(
                browser,
                server,
                refused,
                OVERVIEW,
                viewport=WIDE,
                color_scheme="dark",
            )
            await expect(overview_row(dark, "builder-2")).to_be_visible(timeout=20000)
            await dark.locator("labpower-overview-card").screenshot(
                path=screenshots / "overview-card-dark.png", animations="disabled"
            )

            # A 2-minute maximum: reminded (a persistent notification), then released.
            await set_ui_hold_max(server, 120)
            await asyncio.sleep(3)  # the lab reloads
            await server.get("/api/labpower/resources/ci-runner")
            await bobs.goto(f"{server.url}/{OVERVIEW}")
            bob_ci = overview_row(bobs, "ci-runner")
            await bob_ci.locator('[data-action="hold"]').click(timeout=20000)
            await expect(bob_ci.locator(TOKENS)).to_contain_text(BOB, timeout=10000)
            await expect(bob_ci.locator(TOKENS)).to_contain_text("2 min left")
            started = time.monotonic()
            reminder: dict[str, Any] | None = None
            while time.monotonic() - started < 150:
                [notes] = await server.websocket(
                    {"type": "persistent_notification/get"}
                )
                if reminder is None:
                    reminder = next(
                        (n for n in notes if "ci-runner" in n["title"]), None
                    )
                    if reminder is not None:
                        # Bob sees it in his sidebar's notifications, in his browser.
                        bob_wide = await open_logged_in(
                            browser,
                            bob,
                            refused,
                            OVERVIEW,
                            viewport=WIDE,
                        )
                        await (
                            bob_wide.locator("ha-sidebar", has_text="Notifications")
                            .get_by_text("Notifications")
                            .click(timeout=20000)
                        )
                        drawer = bob_wide.locator("notification-drawer")
                        await expect(
                            drawer.get_by_text(reminder["title"])
                        ).to_be_visible(timeout=10000)
                        await bob_wide.screenshot(
                            path=screenshots / "hold-reminder.png",
                            clip={"x": 0, "y": 0, "width": 500, "height": 280},
                            animations="disabled",
                        )
                resource = await server.get("/api/labpower/resources/ci-runner")
                if resource["holders"] == 0:
                    break
                await asyncio.sleep(2)
            assert reminder is not None, "no reminder before the end"
            # the translations' text, naming its user
            assert reminder["title"] == "Your hold on ci-runner ends soon"
            assert reminder["message"].startswith(
                f"{BOB}: your hold on ci-runner ends at"
            )
            assert resource["holders"] == 0, "not released after its maximum"
            await expect(bob_ci.locator(TOKENS)).to_contain_text(
                "nobody", timeout=10000
            )
            assert refused == [], refused
