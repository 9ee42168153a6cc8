"""labpower's energy sensors on Home Assistant's Energy dashboard, end to end.

The demo lab of scripts/develop in a real Home Assistant (tests/peers/hass_process.py, as
the rack card's test starts it), its resources' Energy sensors set up as the dashboard's
individual devices through the websocket API, half a day of hourly statistics imported for
them (the recorder would compile its own only every five minutes and hourly), and the
dashboard opened in headless Chromium as the rack card's test opens its dashboard. It checks
that the dashboard shows labpower's devices and saves the screenshot the README shows
(docs/images/energy-dashboard.png).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
import time
from typing import Any

from playwright.async_api import (
    Browser,
    FloatRect,
    Locator,
    Page,
    expect,
)
import pytest

from .peers.chromium import CHROMIUM, DEMO, chromium, open_logged_in
from .peers.hass_process import Server, home_assistant, screenshot_dir

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

HOURS = 12  # hours of statistics before the current one
LOCAL_HOUR = (
    20  # the hour of day the test runs at, there: the day's chart is well filled
)
# Each demo resource: its nominal draw (config/demo/seed.py) and the fraction of each of the
# last HOURS + 1 hours it was on (a hold on the switch, builds, a CI night...).
SCHEDULE: dict[str, tuple[float, list[float]]] = {
    "network-switch": (30, [1.0] * (HOURS + 1)),
    "builder-1": (180, [0, 0, 0.5, 1, 1, 0.75, 0, 0, 0.25, 1, 1, 0.5, 0]),
    "builder-2": (220, [0, 0, 0, 0.25, 1, 1, 1, 0.5, 0, 0, 0.75, 1, 0.5]),
    "ci-runner": (45, [0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.5]),
    "pi-maas": (8, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]),
}
assert set(SCHEDULE) == DEMO
assert all(len(on) == HOURS + 1 for _, on in SCHEDULE.values())


def energy_sensor(resource: str) -> str:
    """A resource's Energy sensor."""
    return f"sensor.{resource.replace('-', '_')}_energy"


def statistics(resource: str, hours: list[datetime]) -> dict[str, Any]:
    """recorder/import_statistics for a resource: kWh counted hour by hour."""
    watts, on = SCHEDULE[resource]
    total = 0.0
    # A first hour with nothing used: where the first hour's change starts from.
    stats = [
        {"start": (hours[0] - timedelta(hours=1)).isoformat(), "state": 0, "sum": 0}
    ]
    for start, fraction in zip(hours, on, strict=True):
        total = round(total + watts * fraction / 1000, 5)
        stats.append({"start": start.isoformat(), "state": total, "sum": total})
    return {
        "type": "recorder/import_statistics",
        "metadata": {
            "has_mean": False,
            "mean_type": 0,
            "has_sum": True,
            "name": None,
            "source": "recorder",
            "statistic_id": energy_sensor(resource),
            "unit_class": "energy",
            "unit_of_measurement": "kWh",
        },
        "stats": stats,
    }


def time_zone(now: datetime) -> str:
    """A time zone where it is LOCAL_HOUR o'clock now.

    Both Home Assistant and the browser are put there: the dashboard shows today in the
    browser's time zone, and the statistics cover the hours up to now.
    """
    offset = (LOCAL_HOUR - now.hour) % 24
    if offset > 14:
        offset -= 24
    # Etc/GMT-5 is five hours ahead of UTC (POSIX signs).
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def until_imported(server: Server, start: datetime) -> dict[str, Any]:
    """The hourly statistics once the recorder has written every imported hour."""
    deadline = time.monotonic() + 15
    ids = [energy_sensor(resource) for resource in sorted(DEMO)]
    while True:
        stats: dict[str, Any]
        [stats] = await server.websocket(
            {
                "type": "recorder/statistics_during_period",
                "start_time": start.isoformat(),
                "statistic_ids": ids,
                "period": "hour",
                "types": ["change", "sum"],
            }
        )
        if all(len(stats.get(i, [])) == HOURS + 1 for i in ids):
            return stats
        assert time.monotonic() < deadline, (stats, server.log_tail())
        await asyncio.sleep(0.2)


async def open_energy(
    browser: Browser, server: Server, zone: str, refused: list[str]
) -> Page:
    """The Energy dashboard in a new page, logged in as the owner."""
    return await open_logged_in(
        browser,
        server,
        refused,
        "energy",
        viewport={"width": 1440, "height": 1450},
        timezone_id=zone,
        reduced_motion="reduce",  # charts drawn at once, without their animation
    )


async def chart_data(page: Page, chart: Locator, read: str) -> list[Any]:
    """What `read` takes from an echarts chart's options, once it has some."""
    handle = await chart.element_handle(timeout=20000)
    found = await page.wait_for_function(
        f"""e => {{
          const options = e.chart && e.chart.getOption();
          const data = options && options.series.length && ({read})(options);
          return data && data.length ? data : null;
        }}""",
        arg=handle,
        timeout=20000,
    )
    data: list[Any] = await found.json_value()
    return data


async def around(page: Page, *selectors: str) -> FloatRect:
    """The page from its top left corner to the elements' farthest corner, and a margin."""
    right = bottom = 0.0
    for selector in selectors:
        box = await page.locator(selector).bounding_box()
        assert box is not None, selector
        right = max(right, box["x"] + box["width"])
        bottom = max(bottom, box["y"] + box["height"])
    return {"x": 0, "y": 0, "width": right + 24, "height": bottom + 16}


async def test_energy_dashboard_in_chromium(tmp_path: Path) -> None:
    started = time.monotonic()
    now = datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=HOURS - n) for n in range(HOURS + 1)]
    async with home_assistant(tmp_path) as server:
        sensors = {resource: energy_sensor(resource) for resource in sorted(DEMO)}
        # A resource's Energy sensor is disabled by default (a lab of thousands has
        # the lab's totals): enabled here as a user does on the device page.
        await server.enable_entities(list(sensors.values()))
        for resource, entity_id in sensors.items():
            state = await server.get(f"/api/states/{entity_id}")
            assert state["attributes"]["unit_of_measurement"] == "kWh", state
            assert state["attributes"]["state_class"] == "total_increasing", state
            assert state["attributes"]["friendly_name"] == f"{resource} Energy", state
        await server.websocket(
            {"type": "config/core/update", "time_zone": time_zone(now)},
            {
                "type": "energy/save_prefs",
                "device_consumption": [
                    {"stat_consumption": entity_id} for entity_id in sensors.values()
                ],
            },
            *(statistics(resource, hours) for resource in sensors),
        )
        [prefs] = await server.websocket({"type": "energy/get_prefs"})
        assert [d["stat_consumption"] for d in prefs["device_consumption"]] == list(
            sensors.values()
        )
        imported = await until_imported(server, hours[0])
        for resource, entity_id in sensors.items():
            watts, on = SCHEDULE[resource]
            changes = [row["change"] for row in imported[entity_id]]
            assert changes == pytest.approx([watts * f / 1000 for f in on]), resource

        refused: list[str] = []  # requests to anywhere but 127.0.0.1
        async with chromium() as browser:
            page = await open_energy(browser, server, time_zone(now), refused)
            names = sorted(f"{resource} Energy" for resource in sensors)
            # Individual devices detail: a bar per hour and device, the devices in its
            # legend by the names of their Energy sensors.
            legend = page.locator("hui-energy-devices-detail-graph-card .label")
            await expect(legend).to_have_count(len(sensors), timeout=20000)
            assert sorted(await legend.all_inner_texts()) == names
            # Individual devices: a bar per device with today's use as imported, each
            # labelled with its name (drawn on the canvas: ask the chart's axis).
            devices = page.locator("hui-energy-devices-graph-card ha-chart-base")
            bars = await chart_data(
                page,
                devices,
                "o => o.series[0].data.map(d => [d.value[0], d.id,"
                " o.yAxis[0].axisLabel.formatter(d.id)])",
            )
            assert {entity_id: kwh for kwh, entity_id, _ in bars} == {
                entity_id: pytest.approx(
                    sum(SCHEDULE[resource][0] * f / 1000 for f in SCHEDULE[resource][1])
                )
                for resource, entity_id in sensors.items()
            }
            assert sorted(label for _, _, label in bars) == names
            # Energy flow: every device.
            flow = await chart_data(
                page,
                page.locator("hui-energy-sankey-card ha-chart-base"),
                "o => o.series[0].nodes.map(node => node.id)",
            )
            assert sorted(flow) == sorted(sensors.values())
            await page.wait_for_timeout(500)  # the charts' last resize

            await page.screenshot(
                path=screenshot_dir(tmp_path) / "energy-dashboard.png",
                animations="disabled",
                clip=await around(
                    page,
                    "hui-energy-devices-detail-graph-card",
                    "hui-energy-sankey-card",
                    "hui-energy-period-selector",
                ),
            )
            assert refused == [], refused
    assert time.monotonic() - started < 60
