"""The rack card end to end: a real Home Assistant with the demo lab, in a real Chromium.

Home Assistant runs as scripts/develop runs it (config/ copied to a temporary directory,
the demo lab seeded), as a subprocess on a free 127.0.0.1 port (tests/peers/hass_process.py,
which the load benchmark shares). The test makes the owner
through the onboarding API (the other onboarding steps are marked done in storage, so
nothing reaches the network), adds a dashboard holding the card, opens it in headless
Chromium with the owner's tokens where the frontend keeps them, and clicks through to
turn a resource on. Its screenshots go to a temporary folder; scripts/screenshots writes them
into docs/images, where the README shows them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from playwright.async_api import (
    Browser,
    Page,
    expect,
)
import pytest

from .peers.chromium import CHROMIUM, DEMO, chromium, open_logged_in
from .peers.hass_process import (
    OWNER,
    REPO,
    Server,
    home_assistant,
    screenshot_dir,
)

STATES = {"off", "starting", "available", "stopping", "fault", "unknown"}
# The dashboard the demo's seed makes: the rack card, racks from `rack:`/`position:` labels.
DASHBOARD = "lab-rack"
RACKS = {
    "rack A": ["network-switch", "builder-1", "builder-2"],
    "rack B": ["pi-maas", "ci-runner"],
}

# The card's layout of resources labelled by rack, stack and position, as [title, names].
LAYOUT_BY_LABELS = """async url => {
  const { layout } = await import(url);
  const resources = [
    { name: "loose", labels: ["amd64"] },
    { name: "pi-1", labels: ["stack:3"] },
    { name: "b-2", labels: ["rack:B"] },
    { name: "b-1", labels: ["rack:B"] },
    { name: "a-2nd", labels: ["rack:A", "position:A/2"] },
    { name: "a-top", labels: ["position:A/1"] },
  ];
  const { groups } = layout(resources, { group_by: ["rack", "stack"] });
  return groups.map(g => [g.title, g.slots.map(s => s.resource.name)]);
}"""
# The card's visual editor, made as HA's card dialog makes it, shown on the page.
EDIT_CARD = """async () => {
  const card = customElements.get("labpower-rack-card");
  const editor = await card.getConfigElement();
  editor.id = "editor-under-test";
  editor.style.cssText =
    "position:fixed;top:70px;left:20px;width:480px;z-index:9;padding:16px;" +
    "background:var(--card-background-color,#fff);";
  window.__editorChanges = [];
  editor.addEventListener("config-changed", (ev) => window.__editorChanges.push(ev.detail.config));
  editor.hass = document.querySelector("home-assistant").hass;
  editor.setConfig({ type: "custom:labpower-rack-card", title: "Demo lab", lab: "Demo lab", group_by: "rack" });
  document.body.appendChild(editor);
  return card.getStubConfig();
}"""
# The URL the frontend loads the card from (importing it again reuses that module).
CARD_URL = "/labpower_static/labpower-rack-card.js?v={}".format(
    json.loads(
        (REPO / "custom_components" / "labpower" / "manifest.json").read_text(
            encoding="utf-8"
        )
    )["version"]
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium "
        "(scripts/setup installs it into the root file system)",
    ),
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(90),
]


async def open_dashboard(
    browser: Browser, server: Server, refused: list[str], *, dark: bool = False
) -> Page:
    """The dashboard with the card, logged in as the owner."""
    return await open_logged_in(
        browser,
        server,
        refused,
        f"{DASHBOARD}/0",
        viewport={"width": 1000, "height": 760},
        color_scheme="dark" if dark else "light",
    )


async def tiles(page: Page) -> dict[str, dict[str, str | None]]:
    """The card's tiles: resource -> its state, holders and the text shown."""
    shown = {}
    for tile in await page.locator("labpower-rack-card .tile").all():
        name = await tile.get_attribute("data-resource")
        assert name is not None
        shown[name] = {
            "state": await tile.get_attribute("data-state"),
            "holders": await tile.get_attribute("data-holders"),
            "text": await tile.inner_text(),
        }
    return shown


async def test_rack_card_in_chromium(tmp_path: Path) -> None:
    screenshots = screenshot_dir(tmp_path)
    async with home_assistant(tmp_path) as server:
        # The websocket command the card uses, in the real server.
        [resources] = await server.websocket({"type": "labpower/resources"})
        assert {r["name"] for r in resources["resources"]} == DEMO
        # Two resources in use already, so the card shows more than "off".
        await server.action(
            "acquire",
            {"resource": "network-switch", "holder": "core network", "kind": "hold"},
        )
        await server.action(
            "acquire", {"resource": "builder-2", "holder": "jenkins #1234"}
        )
        # The demo comes with its dashboard and nothing to repair.
        [dashboards] = await server.websocket({"type": "lovelace/dashboards/list"})
        assert DASHBOARD in [d["url_path"] for d in dashboards]
        assert await server.repairs_shown() == []
        refused: list[str] = []  # requests to anywhere but 127.0.0.1
        async with chromium() as browser:
            page = await open_dashboard(browser, server, refused)
            card_tiles = page.locator("labpower-rack-card .tile")
            await expect(card_tiles).to_have_count(len(DEMO), timeout=20000)

            # Every demo resource with the state Home Assistant has for it.
            network = page.locator(
                'labpower-rack-card .tile[data-resource="network-switch"]'
            )
            await expect(network).to_have_attribute("data-state", "available")
            await expect(network).to_have_attribute("data-holders", "1")
            shown = await tiles(page)
            assert set(shown) == DEMO
            # The tiles follow the websocket (a large lab's State sensors are disabled).
            listed = await server.get("/api/labpower/resources")
            states = {r["name"]: r["state"] for r in listed["resources"]}
            for name, tile in shown.items():
                assert tile["state"] in STATES
                if name in {"builder-1", "ci-runner"}:
                    assert states[name] == tile["state"] == "off", (name, tile)
                assert str(tile["text"]).startswith(name)
            await expect(network).to_contain_text("Available")
            # builder-2 boots for 35 s: starting, with its CI job's token.
            builder_2 = page.locator(
                'labpower-rack-card .tile[data-resource="builder-2"]'
            )
            await expect(builder_2).to_have_attribute("data-state", "starting")
            await expect(builder_2).to_have_attribute("data-holders", "1")
            await expect(builder_2).to_contain_text("Starting")
            assert shown["ci-runner"]["holders"] == "0"
            # Racks A and B from the resources' labels, in slot order.
            racks = page.locator("labpower-rack-card .rack")
            await expect(racks).to_have_count(2)
            for number, (title, names) in enumerate(RACKS.items()):
                rack = racks.nth(number)
                await expect(rack.locator(".rack-name")).to_have_text(title)
                slots = rack.locator(".tile")
                assert [
                    await slots.nth(i).get_attribute("data-resource")
                    for i in range(await slots.count())
                ] == names

            # In the card picker; groups from labels as well as from positions.
            assert await page.evaluate(
                "window.customCards.some(card => card.type === 'labpower-rack-card')"
            )
            assert await page.evaluate(LAYOUT_BY_LABELS, CARD_URL) == [
                ["rack A", ["a-top", "a-2nd"]],
                ["rack B", ["b-1", "b-2"]],
                ["stack 3", ["pi-1"]],
                ["other", ["loose"]],
            ]

            # A click on builder-1 opens its Power switch's more-info dialog...
            builder_1 = page.locator(
                'labpower-rack-card .tile[data-resource="builder-1"]'
            )
            await builder_1.click()
            dialog = page.locator("ha-more-info-dialog")
            await expect(dialog).to_contain_text("builder-1", timeout=10000)
            await expect(dialog).to_contain_text("Power")
            # ...where its big toggle turns it on: a hold for the owner.
            toggle = dialog.locator("ha-control-switch, [role='switch']").first
            await expect(toggle).to_be_visible(timeout=10000)
            await toggle.click()
            await expect(builder_1).to_have_attribute("data-holders", "1")
            await expect(builder_1).to_have_attribute("data-state", "starting")
            resource = await server.get("/api/labpower/resources/builder-1")
            assert resource["holders"] == 1
            assert [t["holder"] for t in resource["tokens"]] == [OWNER]
            assert [t["kind"] for t in resource["tokens"]] == ["hold"]
            await page.keyboard.press("Escape")
            await expect(
                dialog.locator("ha-dialog, ha-md-dialog, wa-dialog").first
            ).to_be_hidden()

            # The closed dialog gives the focus back to the tile: no focus ring in the picture.
            with contextlib.suppress(AssertionError):
                await expect(builder_1).to_be_focused(timeout=3000)
            await builder_1.blur()
            card = page.locator("labpower-rack-card")
            await card.screenshot(
                path=screenshots / "rack-card.png", animations="disabled"
            )
            # The same card on a phone: no sideways scrolling.
            await page.set_viewport_size({"width": 390, "height": 844})
            overflow = await card.evaluate(
                "card => { const c = card.shadowRoot.querySelector('ha-card');"
                " return c.scrollWidth - c.clientWidth; }"
            )
            assert overflow <= 0

            # The visual editor HA shows in the card dialog: the card's fields in ha-form.
            await page.set_viewport_size({"width": 1000, "height": 760})
            assert await page.evaluate(EDIT_CARD) == {"group_by": "rack"}
            editor = page.locator("#editor-under-test")
            await expect(editor.locator("ha-form")).to_be_visible(timeout=10000)
            await editor.screenshot(
                path=screenshots / "rack-card-editor.png", animations="disabled"
            )
            title = editor.locator("ha-form input").first
            await title.fill("Basement lab")
            await page.wait_for_function(
                "window.__editorChanges.length > 0", timeout=5000
            )
            changes = await page.evaluate("window.__editorChanges")
            assert changes[-1] == {
                "type": "custom:labpower-rack-card",
                "title": "Basement lab",
                "lab": "Demo lab",
                "group_by": "rack",
            }
            # The savings line is on unless turned off: the switch shows it so.
            savings = editor.get_by_role("switch")
            await expect(savings).to_be_checked()
            await savings.click(force=True)  # the drawn switch covers its input
            await page.wait_for_function(
                "window.__editorChanges.length > 1", timeout=5000
            )
            changes = await page.evaluate("window.__editorChanges")
            assert changes[-1]["savings"] is False

            dark = await open_dashboard(browser, server, refused, dark=True)
            await expect(dark.locator("labpower-rack-card .tile")).to_have_count(
                len(DEMO), timeout=20000
            )
            await dark.locator("labpower-rack-card").screenshot(
                path=screenshots / "rack-card-dark.png", animations="disabled"
            )
            assert refused == [], refused
