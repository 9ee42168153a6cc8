"""The configuration forms end to end: the demo lab's forms in a real Chromium.

Home Assistant runs as scripts/develop runs it (tests/peers/hass_process.py). The owner goes
Settings -> Devices & services -> labpower and, on the Demo lab entry, opens the lab's
options, adds a Wake-on-LAN resource (one refusal shown on the way), changes it (its stored
SSH password is not sent back to the browser, and left blank it is kept), and opens Add BMC
and Add PDU unit. The texts asserted are read from translations/en.json, as the frontend
shows them. Screenshots of every form go to a temporary folder; scripts/screenshots writes
them into docs/images/forms, where the README links them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import time
from typing import Any

from playwright.async_api import Locator, Page, Response, expect
import pytest

from .peers.chromium import CHROMIUM, chromium, open_logged_in
from .peers.hass_process import REPO, home_assistant, screenshot_dir

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.timeout(180),
]

TRANSLATIONS = json.loads(
    (REPO / "custom_components" / "labpower" / "translations" / "en.json").read_text(
        encoding="utf-8"
    )
)
OPTIONS = TRANSLATIONS["options"]["step"]["init"]
RESOURCE = TRANSLATIONS["config_subentries"]["resource"]
BMC = TRANSLATIONS["config_subentries"]["bmc"]
PDU = TRANSLATIONS["config_subentries"]["pdu"]
SWITCHERS = TRANSLATIONS["selector"]["switcher_type"]["options"]
CHECKERS = TRANSLATIONS["selector"]["checker_type"]["options"]
VENDORS = TRANSLATIONS["selector"]["vendor"]["options"]

NEW = "builder-3"
PASSWORD = "stored-secret"  # a test's SSH password: nothing logs in with it
NOT_A_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----"
)


def dialog_of(page: Page) -> Locator:
    """The config flow dialog (its fields are slotted into the dialog surface)."""
    return page.locator("dialog-data-entry-flow")


async def shoot(page: Page, path: Path) -> None:
    """The dialog alone, once its form has settled (no focus ring, no ripple)."""
    await page.evaluate("() => document.activeElement && document.activeElement.blur()")
    await page.wait_for_timeout(300)
    await (
        dialog_of(page)
        .get_by_role("dialog")
        .screenshot(path=path, animations="disabled")
    )


def field(dialog: Locator, label: str) -> Locator:
    """A text or number box by its label (a required field's label ends in *)."""
    return dialog.get_by_role("textbox", name=label, exact=True).or_(
        dialog.get_by_role("spinbutton", name=label, exact=True)
    )


async def has_fields(dialog: Locator, labels: dict[str, Any], keys: list[str]) -> None:
    """Each field's translated label is shown, with its description where it has one."""
    for key in keys:
        await expect(dialog.get_by_text(labels["data"][key]).first).to_be_visible()
        if description := labels.get("data_description", {}).get(key):
            await expect(dialog.get_by_text(description).first).to_be_visible()


async def above(upper: Locator, lower: Locator) -> bool:
    """Whether `upper` is shown above `lower`."""
    first = await upper.first.bounding_box()
    second = await lower.first.bounding_box()
    assert first is not None
    assert second is not None
    return first["y"] < second["y"]


async def add_on_entry(page: Page, item: str, step: dict[str, Any]) -> None:
    """An Add item of the Demo lab entry's menu, until its form (`step`) is shown."""
    lab = page.locator("ha-config-entry-row").filter(has_text="Demo lab").first
    await lab.get_by_role("button", name="Menu").first.click()
    await page.get_by_role("menuitem", name=item).click()
    title = dialog_of(page).get_by_text(step["title"], exact=True)
    await expect(title).to_be_visible(timeout=10000)


async def close(page: Page) -> None:
    """Close the dialog, its flow unfinished."""
    await dialog_of(page).get_by_role("button", name="Close").click()
    await expect(dialog_of(page).get_by_role("dialog")).to_be_hidden()


async def stored_subentry(directory: Path, title: str) -> dict[str, Any]:
    """A subentry's data as Home Assistant stored it (it saves a second after a change)."""
    path = directory / ".storage" / "core.config_entries"
    deadline = time.monotonic() + 10
    while True:
        entries = json.loads(path.read_text(encoding="utf-8"))["data"]["entries"]
        found = [
            sub
            for entry in entries
            for sub in entry.get("subentries", [])
            if sub["title"] == title
        ]
        if found:
            return dict(found[0]["data"])
        assert time.monotonic() < deadline, f"{title} was not stored"
        await asyncio.sleep(0.2)


async def test_config_forms_in_chromium(tmp_path: Path) -> None:
    screenshots = screenshot_dir(tmp_path) / "forms"
    screenshots.mkdir(exist_ok=True)
    async with home_assistant(tmp_path) as server:
        refused: list[str] = []
        async with chromium() as browser:
            # Tall enough that the longest form (a resource's details) fits unscrolled.
            page = await open_logged_in(
                browser,
                server,
                refused,
                "config/integrations/dashboard",
                viewport={"width": 1000, "height": 3200},
            )
            # What the flows send the browser (each step's form, as JSON).
            flow_answers: list[str] = []

            async def keep_flow_answer(response: Response) -> None:
                if "/api/config/config_entries/subentries/flow" in response.url:
                    flow_answers.append(await response.text())

            page.on("response", keep_flow_answer)
            # Settings -> Devices & services -> labpower -> the Demo lab entry.
            await page.get_by_text("labpower", exact=True).first.click()
            await expect(page).to_have_url(
                f"{server.url}/config/integrations/integration/labpower"
            )
            lab = page.locator("ha-config-entry-row").filter(has_text="Demo lab").first
            await expect(lab).to_be_visible(timeout=20000)
            dialog = dialog_of(page)

            # The lab's options: every lab-wide setting, its defaults filled in.
            await lab.get_by_role("button", name="Configure").first.click()
            await expect(dialog.get_by_text(OPTIONS["title"])).to_be_visible(
                timeout=10000
            )
            await has_fields(dialog, OPTIONS, list(OPTIONS["data"]))
            await expect(
                field(dialog, OPTIONS["data"]["token_limit"] + "*")
            ).to_have_value("100")
            await expect(
                field(dialog, OPTIONS["data"]["ui_hold_max"] + "*")
            ).to_have_value("43200")
            # The UPS sensors come just before what their running on battery sets off.
            assert await above(
                dialog.get_by_text(OPTIONS["data"]["ups_entities"], exact=True),
                dialog.get_by_text(OPTIONS["data"]["refuse_acquire_on_battery"]),
            )
            await shoot(page, screenshots / "lab-options.png")
            await close(page)

            # Add resource, first step: name, switcher and checker.
            user = RESOURCE["step"]["user"]
            await add_on_entry(page, "Add resource", user)
            await has_fields(dialog, user, ["name", "switcher_type", "checker_type"])
            for label in (*SWITCHERS.values(), *CHECKERS.values()):
                await expect(dialog.get_by_role("radio", name=label)).to_be_visible()
            await dialog.get_by_role("textbox", name="Name*").fill(NEW)
            await dialog.get_by_role("radio", name=SWITCHERS["wol"]).check()
            await dialog.get_by_role("radio", name=CHECKERS["tcp"]).check()
            await shoot(page, screenshots / "resource-user.png")
            await dialog.get_by_role("button", name="Submit").click()

            # Its details: Wake-on-LAN and SSH, the TCP check, the policy.
            details = RESOURCE["step"]["details"]
            labels = details["data"]
            await expect(
                dialog.get_by_text(details["title"].format(name=NEW))
            ).to_be_visible(timeout=10000)
            wol_keys = ["mac", "wol_address", "wol_port", "ssh_host", "ssh_port", "ssh_username",
                        "ssh_password", "ssh_key", "ssh_command", "host", "port", "off_delay",
                        "max_ttl", "graceful_off", "depends_on", "labels", "meter_entity",
                        "power_w"]  # fmt: skip
            await has_fields(dialog, details, wol_keys)
            await expect(field(dialog, labels["wol_address"] + "*")).to_have_value(
                "255.255.255.255"
            )
            await shoot(page, screenshots / "resource-details.png")
            # A MAC with a typo and a key SSH cannot read: each refused, in words, at its field.
            await field(dialog, labels["mac"] + "*").fill("52:54:00:zz:00:01")
            await field(dialog, labels["ssh_host"] + "*").fill("127.0.0.1")
            await field(dialog, labels["ssh_username"] + "*").fill("ci")
            await field(dialog, labels["ssh_key"]).fill(NOT_A_KEY)
            await field(dialog, labels["host"] + "*").fill("127.0.0.1")
            await field(dialog, labels["port"] + "*").fill("22")
            await dialog.get_by_role("button", name="Submit").click()
            errors = RESOURCE["error"]
            await expect(
                dialog.locator("ha-alert").filter(has_text=errors["invalid_mac"])
            ).to_be_visible(timeout=10000)
            await expect(
                dialog.locator("ha-alert").filter(has_text=errors["invalid_ssh_key"])
            ).to_be_visible()
            await expect(dialog.locator("ha-alert")).to_have_count(2)
            # Each just above its field (Home Assistant's forms put a field's error there).
            mac_error = dialog.locator("ha-alert").filter(
                has_text=errors["invalid_mac"]
            )
            key_error = dialog.locator("ha-alert").filter(
                has_text=errors["invalid_ssh_key"]
            )
            assert await above(mac_error, field(dialog, labels["mac"] + "*"))
            assert await above(field(dialog, labels["ssh_password"]), key_error)
            assert await above(key_error, field(dialog, labels["ssh_key"]))
            # What was entered stays (but for a credential, which is never sent back).
            await expect(field(dialog, labels["ssh_username"] + "*")).to_have_value(
                "ci"
            )
            await shoot(page, screenshots / "resource-details-refused.png")
            await field(dialog, labels["mac"] + "*").fill("52:54:00:12:00:01")
            await field(dialog, labels["ssh_key"]).fill("")
            await field(dialog, labels["ssh_password"]).fill(PASSWORD)
            await dialog.get_by_role("button", name="Submit").click()
            await expect(
                dialog.get_by_text(f"Created configuration for {NEW}")
            ).to_be_visible(timeout=10000)
            await dialog.get_by_role("button", name="Finish").click()
            stored = await stored_subentry(tmp_path, NEW)
            assert stored["mac"] == "52:54:00:12:00:01"
            assert stored["ssh_password"] == PASSWORD
            assert "ssh_key" not in stored or not stored["ssh_key"]

            # Changing it: the name stays, the stored password is not filled in.
            row = page.locator("ha-config-sub-entry-row").filter(has_text=NEW).first
            await row.get_by_role("button", name="Configure").first.click()
            await expect(
                dialog.get_by_role("radio", name=SWITCHERS["wol"])
            ).to_be_checked(timeout=10000)
            await expect(
                dialog.get_by_role("radio", name=CHECKERS["tcp"])
            ).to_be_checked()
            await expect(dialog.get_by_role("textbox", name="Name*")).to_have_count(0)
            await shoot(page, screenshots / "resource-change-user.png")
            await dialog.get_by_role("button", name="Submit").click()
            await expect(
                dialog.get_by_text(details["title"].format(name=NEW))
            ).to_be_visible(timeout=10000)
            await expect(field(dialog, labels["mac"] + "*")).to_have_value(
                "52:54:00:12:00:01"
            )
            await expect(field(dialog, labels["ssh_password"])).to_have_value("")
            await expect(field(dialog, labels["ssh_key"])).to_have_value("")
            # The password field went to the browser; the stored password never did.
            assert any('"ssh_password"' in answer for answer in flow_answers)
            assert not any(PASSWORD in answer for answer in flow_answers)
            blank_keeps = "leave empty to keep the stored one"
            assert blank_keeps in details["data_description"]["ssh_password"]
            await expect(
                dialog.get_by_text(details["data_description"]["ssh_password"])
            ).to_be_visible()
            await shoot(page, screenshots / "resource-change-details.png")
            await field(dialog, labels["ssh_command"] + "*").fill("sudo poweroff")
            await dialog.get_by_role("button", name="Submit").click()
            # (The frontend says "Reconfiguration was successful" in its own words.)
            await dialog.get_by_role("button", name="Close").last.click(timeout=10000)
            deadline = time.monotonic() + 10
            while (stored := await stored_subentry(tmp_path, NEW))[
                "ssh_command"
            ] != "sudo poweroff":
                assert time.monotonic() < deadline, stored
                await asyncio.sleep(0.2)
            assert stored["ssh_password"] == PASSWORD  # left blank: kept

            # Add BMC: one form; it is tried before it is saved.
            bmc = BMC["step"]["user"]
            await add_on_entry(page, "Add BMC", bmc)
            await has_fields(dialog, bmc, list(bmc["data"]))
            await expect(field(dialog, bmc["data"]["password"] + "*")).to_have_value("")
            await shoot(page, screenshots / "bmc.png")
            await close(page)

            # Add PDU unit: its vendor, then how to connect to it (SNMP: the most to set).
            unit = PDU["step"]["user"]
            await add_on_entry(page, "Add PDU unit", unit)
            await has_fields(dialog, unit, list(unit["data"]))
            for label in VENDORS.values():
                await expect(dialog.get_by_role("radio", name=label)).to_be_visible()
            await field(dialog, unit["data"]["name"] + "*").fill("pdu-1")
            await dialog.get_by_role("radio", name=VENDORS["snmp"]).check()
            await field(dialog, unit["data"]["host"] + "*").fill("127.0.0.1")
            await shoot(page, screenshots / "pdu-user.png")
            await dialog.get_by_role("button", name="Submit").click()
            connection = PDU["step"]["connection"]
            await expect(
                dialog.get_by_text(connection["title"].format(name="pdu-1"))
            ).to_be_visible(timeout=10000)
            await has_fields(
                dialog,
                connection,
                ["snmp_version", "community", "write_community", "username", "auth_protocol",
                 "auth_key", "priv_protocol", "priv_key", "snmp_profile"],
            )  # fmt: skip
            # Twelve vendor profiles: a drop-down, not a column of radio buttons.
            profiles = TRANSLATIONS["selector"]["snmp_profile"]["options"]
            await expect(
                dialog.locator("ha-select").filter(has_text=profiles["automatic"])
            ).to_be_visible()
            await expect(
                dialog.get_by_role("radio", name=profiles["apc_rpdu2"])
            ).to_have_count(0)
            await shoot(page, screenshots / "pdu-connection.png")
            await close(page)
        assert refused == [], refused
