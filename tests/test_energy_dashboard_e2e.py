"""labpower's energy sensors on Home Assistant's Energy dashboard, end to end.

The demo lab of scripts/develop in a real Home Assistant (tests/peers/hass_process.py, as
the rack card's test starts it), with the Energy configuration its seed writes (the lab's
supply priced, its resources the dashboard's individual devices with their Power), half a
day of hourly statistics imported for them and two weeks of the lab's money (the recorder
would compile its own only every five minutes and hourly), and the dashboards opened in
headless Chromium as the rack card's test opens its dashboard. It checks that the Energy
dashboard's own validation finds no issue, that it shows labpower's devices, that the demo's
dashboard shows the savings in EUR (the rack card's header, the savings graph), and saves
the screenshots the README shows (docs/images/energy-dashboard.png, demo-savings.png).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
import re
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
from .peers.hass_process import Server, home_assistant, screenshot_dir, seed_module

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
SEED = seed_module()
LAB_ENERGY = SEED.lab_entity("energy")
LAB_POWER = SEED.lab_entity("power")
# The lab's money, two weeks of it: the fraction of each day its machines were on.
DAYS_ON = [0.35, 0.4, 0.3, 0.1, 0.05, 0.45, 0.5, 0.4, 0.35, 0.45, 0.1, 0.05, 0.4, 0.3]
BASELINE_W = sum(watts for watts, _ in SCHEDULE.values())  # everything always on


def energy_sensor(resource: str) -> str:
    """A resource's Energy sensor."""
    return f"sensor.{resource.replace('-', '_')}_energy"


def counted(statistic_id: str, unit: str, start: datetime, steps: list[float]) -> Any:
    """recorder/import_statistics of a counter (kWh or money).

    `steps` are added hour by hour from `start`, after a row of nothing (where the first
    change starts from).
    """
    total = 0.0
    stats = [{"start": (start - timedelta(hours=1)).isoformat(), "state": 0, "sum": 0}]
    for n, step in enumerate(steps):
        total = round(total + step, 5)
        hour = (start + timedelta(hours=n)).isoformat()
        stats.append({"start": hour, "state": total, "sum": total})
    return {
        "type": "recorder/import_statistics",
        "metadata": {
            "has_mean": False,
            "mean_type": 0,
            "has_sum": True,
            "name": None,
            "source": "recorder",
            "statistic_id": statistic_id,
            "unit_class": "energy" if unit == "kWh" else None,
            "unit_of_measurement": unit,
        },
        "stats": stats,
    }


def statistics(resource: str, hours: list[datetime]) -> dict[str, Any]:
    """recorder/import_statistics for a resource: kWh counted hour by hour."""
    watts, on = SCHEDULE[resource]
    return counted(
        energy_sensor(resource), "kWh", hours[0], [watts * f / 1000 for f in on]
    )


def lab_statistics(hours: list[datetime]) -> list[dict[str, Any]]:
    """The lab's Energy (every resource's), its cost and Power (a mean per hour)."""
    kwh = [
        sum(watts * on[n] / 1000 for watts, on in SCHEDULE.values())
        for n in range(HOURS + 1)
    ]
    power = [
        {"start": hour.isoformat(), "mean": w * 1000, "min": 0, "max": BASELINE_W}
        for hour, w in zip(hours, kwh, strict=True)
    ]
    return [
        counted(LAB_ENERGY, "kWh", hours[0], kwh),
        # the cost sensor the Energy dashboard makes for the priced supply
        counted(
            f"{LAB_ENERGY}_cost", "EUR", hours[0], [k * SEED.PRICE_PER_KWH for k in kwh]
        ),
        {
            "type": "recorder/import_statistics",
            "metadata": {
                "has_mean": True,
                "mean_type": 1,
                "has_sum": False,
                "name": None,
                "source": "recorder",
                "statistic_id": LAB_POWER,
                "unit_class": "power",
                "unit_of_measurement": "W",
            },
            "stats": power,
        },
    ]


def hourly_money(avoided: bool) -> list[float]:
    """What the lab saved (or spent) each hour of the last two weeks, up to this hour."""
    price = SEED.PRICE_PER_KWH
    hours = [
        BASELINE_W / 1000 * price * ((1 - fraction) if avoided else fraction)
        for fraction in DAYS_ON
        for _ in range(24)
    ]
    return hours[: -(24 - LOCAL_HOUR)]  # today: up to the hour before this one


def money_statistics(this_hour: datetime) -> list[dict[str, Any]]:
    """Two weeks of the lab's Cost avoided and Cost at the demo's price, hour by hour."""
    start = this_hour - timedelta(days=len(DAYS_ON) - 1, hours=LOCAL_HOUR)  # midnight
    return [
        counted(SEED.lab_entity(key), "EUR", start, hourly_money(key == "cost_avoided"))
        for key in ("cost_avoided", "cost")
    ]


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


async def until_valid(server: Server, devices: int) -> None:
    """The Energy dashboard's own validation: no issue, once the imports are written."""
    deadline = time.monotonic() + 15
    while True:
        [validation] = await server.websocket({"type": "energy/validate"})
        if validation == {
            "energy_sources": [[]],
            "device_consumption": [[]] * devices,
            "device_consumption_water": [],
        }:
            return
        # only statistics still being written may be missing
        found = {
            issue["type"]
            for issues in validation.values()
            for listed in issues
            for issue in listed
        }
        assert found == {"statistics_not_defined"}, validation
        assert time.monotonic() < deadline, validation
        await asyncio.sleep(0.2)


async def open_page(
    browser: Browser,
    server: Server,
    zone: str,
    refused: list[str],
    *,
    path: str,
    size: tuple[int, int],
) -> Page:
    """A dashboard (`path`) in a new page of `size`, logged in as the owner, in `zone`."""
    width, height = size
    return await open_logged_in(
        browser,
        server,
        refused,
        path,
        viewport={"width": width, "height": height},
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
    now = datetime.now(UTC)
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=HOURS - n) for n in range(HOURS + 1)]
    async with home_assistant(tmp_path) as server:
        sensors = {resource: energy_sensor(resource) for resource in sorted(DEMO)}
        for resource, entity_id in sensors.items():
            state = await server.get(f"/api/states/{entity_id}")
            assert state["attributes"]["unit_of_measurement"] == "kWh", state
            assert state["attributes"]["state_class"] == "total_increasing", state
            assert state["attributes"]["friendly_name"] == f"{resource} Energy", state
        [prefs] = await server.websocket({"type": "energy/get_prefs"})
        assert prefs == SEED.energy_prefs()  # as seeded: a priced supply, the devices
        assert {d["stat_consumption"] for d in prefs["device_consumption"]} == set(
            sensors.values()
        )
        await server.websocket(
            {"type": "config/core/update", "time_zone": time_zone(now)},
            *(statistics(resource, hours) for resource in sensors),
            *lab_statistics(hours),
            *money_statistics(this_hour),
        )
        imported = await until_imported(server, hours[0])
        await until_valid(server, len(sensors))
        # The lab's money in EUR at the seeded price, without any setup.
        cost = await server.get(f"/api/states/{SEED.lab_entity('cost_avoided')}")
        assert cost["attributes"]["unit_of_measurement"] == "EUR", cost
        assert cost["attributes"]["device_class"] == "monetary", cost
        for resource, entity_id in sensors.items():
            watts, on = SCHEDULE[resource]
            changes = [row["change"] for row in imported[entity_id]]
            assert changes == pytest.approx([watts * f / 1000 for f in on]), resource

        refused: list[str] = []  # requests to anywhere but 127.0.0.1
        shots = screenshot_dir(tmp_path)
        async with chromium() as browser:
            page = await open_page(
                browser,
                server,
                time_zone(now),
                refused,
                path="energy/electricity",
                size=(1440, 2300),
            )
            names = sorted(f"{resource} Energy" for resource in sensors)
            # Individual devices detail: a bar per hour and device, the devices in its
            # legend by the names of their Energy sensors.
            # (beside them: untracked and over-reported consumption, from the supply)
            legend = page.locator(
                "hui-energy-devices-detail-graph-card .label", has_text=" Energy"
            )
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
            # Energy flow: from the lab's supply to every device.
            flow = await chart_data(
                page,
                page.locator("hui-energy-sankey-card ha-chart-base"),
                "o => o.series[0].nodes.map(node => node.id)",
            )
            assert set(sensors.values()) <= set(flow), flow
            await page.wait_for_timeout(500)  # the charts' last resize

            await page.screenshot(
                path=shots / "energy-dashboard.png",
                animations="disabled",
                clip=await around(
                    page,
                    "hui-energy-devices-detail-graph-card",
                    "hui-energy-sankey-card",
                    "hui-view-sidebar hui-energy-distribution-card",
                ),
            )
            await power_now(browser, server, time_zone(now), refused, shots)
            await savings_on_the_demo_dashboard(
                browser, server, time_zone(now), refused, shots
            )
            assert refused == [], refused


async def power_now(
    browser: Browser, server: Server, zone: str, refused: list[str], shots: Path
) -> None:
    """The Energy dashboard's Now view: the lab's Power, each resource's in the flow."""
    await server.websocket(
        {
            "type": "call_service",
            "domain": "labpower",
            "service": "acquire",
            "service_data": {"resource": "builder-1", "kind": "hold"},
            "return_response": True,
        }
    )
    page = await open_page(
        browser, server, zone, refused, path="energy/now", size=(1200, 1000)
    )
    # builder-1 on, and the network switch it needs: their nominal draw
    expected = SCHEDULE["builder-1"][0] + SCHEDULE["network-switch"][0]
    badge = page.locator("hui-power-total-badge")
    await expect(badge).to_contain_text(f"{expected:g} W", timeout=20000)
    flow = await chart_data(
        page,
        page.locator("hui-power-sankey-card ha-chart-base"),
        "o => o.series[0].nodes.map(node => node.id)",
    )
    assert {"sensor.builder_1_power", "sensor.network_switch_power"} <= set(flow), flow
    await page.wait_for_timeout(500)  # the charts' last resize
    await page.screenshot(
        path=shots / "energy-power.png",
        animations="disabled",
        clip=await around(
            page, "hui-power-sources-graph-card", "hui-power-sankey-card"
        ),
    )


async def savings_on_the_demo_dashboard(
    browser: Browser, server: Server, zone: str, refused: list[str], shots: Path
) -> None:
    """The demo's dashboard: savings in the rack card's header, the savings graph."""
    page = await open_page(
        browser, server, zone, refused, path="lab-rack/rack", size=(1200, 900)
    )
    saved = page.locator("labpower-rack-card .savings")
    # en-US writes euros as "€1.23"
    line = r"Saved €([\d.]+) today · €([\d.]+) this week · €([\d.]+) this month"
    await expect(saved).to_have_text(re.compile(line), timeout=20000)
    match = re.fullmatch(line, await saved.inner_text())
    assert match is not None
    today, week, month = (float(amount) for amount in match.groups())
    assert today == pytest.approx(sum(hourly_money(True)[-LOCAL_HOUR:]), abs=0.006)
    assert today <= week
    assert today <= month
    graph = page.locator("hui-statistics-graph-card ha-chart-base")
    bars = await chart_data(
        page, graph, "o => o.series.flatMap(s => s.data.map(d => d.value ?? d))"
    )
    assert bars, "the savings graph has no bars"
    await page.wait_for_timeout(500)  # the chart's last resize
    await page.screenshot(
        path=shots / "demo-savings.png",
        animations="disabled",
        clip=await around(page, "labpower-rack-card", "hui-statistics-graph-card"),
    )
