"""Seed the development configuration: a demo Lab, a dashboard with the rack card, the
Energy dashboard's preferences (with a price: the demo's money is in EUR at once), HTTP.

Run by scripts/develop inside the project's Python (`seed.py CONFIG_DIR [PORT]`). It writes
HA's own storage through HA's own classes and schemas, so the demo lab appears exactly as one
made in the UI. The lab and the dashboard are written only into a configuration without
config entries (a developer's changes stay); the HTTP settings are written on every start.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from types import MappingProxyType
from typing import Any

from homeassistant import config_entries
from homeassistant.components.energy.data import (
    DEVICE_CONSUMPTION_SCHEMA,
    ENERGY_SOURCE_SCHEMA,
    STORAGE_KEY as ENERGY_STORAGE_KEY,
    STORAGE_MINOR_VERSION as ENERGY_STORAGE_MINOR_VERSION,
    STORAGE_VERSION as ENERGY_STORAGE_VERSION,
    EnergyPreferences,
)
from homeassistant.components.http.config import (
    HTTP_CONFIG_CREATED_AT,
    HTTP_CONFIG_ERROR,
    HTTP_CONFIG_ERROR_MESSAGE,
    HTTP_STORAGE_SCHEMA,
    KEY_PENDING,
    KEY_STABLE,
    KEY_YAML_MIGRATION_DONE,
    STORAGE_KEY as HTTP_STORAGE_KEY,
    STORAGE_MINOR_VERSION as HTTP_STORAGE_MINOR_VERSION,
    STORAGE_VERSION as HTTP_STORAGE_VERSION,
)
from homeassistant.components.lovelace.dashboard import (
    CONFIG_STORAGE_KEY as DASHBOARD_CONFIG_KEY,
    CONFIG_STORAGE_VERSION as DASHBOARD_CONFIG_VERSION,
    DASHBOARDS_STORAGE_KEY,
    DASHBOARDS_STORAGE_VERSION,
)
from homeassistant.config_entries import ConfigEntry, ConfigSubentryData
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.helpers.issue_registry import (
    STORAGE_KEY as ISSUES_STORAGE_KEY,
    STORAGE_VERSION_MAJOR as ISSUES_STORAGE_VERSION,
    STORAGE_VERSION_MINOR as ISSUES_STORAGE_MINOR_VERSION,
)
from homeassistant.util import dt as dt_util

# The demo serves on the loopback interface only, never on every interface.
HOST = "127.0.0.1"
PORT = 8123
DASHBOARD_ID = "lab_rack"
DASHBOARD_URL = "lab-rack"
# The demo's price of a kWh (EUR, config/configuration.yaml's currency): the Energy
# dashboard's grid price, which labpower's Cost and Cost avoided sensors use.
PRICE_PER_KWH = 0.32
LAB = "Demo lab"
# The demo's resources by the slug of their entity ids.
SLUGS = ("network_switch", "builder_1", "builder_2", "ci_runner", "pi_maas")

DEMO_POLICY = {
    "off_delay": 30,
    "min_off_time": 5,
    "start_timeout": 90,
    "stop_timeout": 20,
    "default_ttl": 900,
    "max_ttl": 86400,
    "graceful_off": True,
}


def rack(name: str, position: int) -> list[str]:
    """The labels that place a resource in the rack card: its rack and its slot."""
    return [f"rack:{name}", f"position:{position}"]


def _resource(name: str, **fields: Any) -> ConfigSubentryData:
    data = {"name": name, **DEMO_POLICY, **fields}
    return ConfigSubentryData(data=data, subentry_type="resource", title=name, unique_id=name)


def demo_entry() -> ConfigEntry:
    """The demo Lab with its resources."""
    relay = "input_boolean.{}_relay".format
    reachable = "binary_sensor.{}_reachable".format
    # The build hosts and the runner need the network switch: acquiring one powers the
    # switch first, and the switch goes off (after its own delay) once none needs it.
    resources = [
        _resource(
            name,
            switcher_type="entity",
            power_entity=relay(key),
            checker_type="entity",
            check_entity=reachable(key),
            labels=labels,
            power_w=watts,
            depends_on=["network-switch"],
        )
        for name, key, labels, watts in (
            ("builder-1", "builder_1", ["builder", "amd64", *rack("A", 2)], 180),
            ("builder-2", "builder_2", ["builder", "amd64", *rack("A", 3)], 220),
            ("ci-runner", "ci_runner", ["runner", "arm64", *rack("B", 2)], 45),
        )
    ]
    resources.append(
        _resource(
            "network-switch",
            switcher_type="entity",
            power_entity=relay("switch"),
            checker_type="none",
            labels=["network", *rack("A", 1)],
            power_w=30,
        )
    )
    resources.append(
        _resource(
            "pi-maas",
            switcher_type="button",
            relay_entity="input_boolean.atx_button_relay",
            led_entity="binary_sensor.pi_maas_power_led",
            short_press=0.5,
            long_press=5,
            checker_type="entity",
            check_entity="binary_sensor.pi_maas_reachable",
            labels=["maas", "arm64", *rack("B", 1)],
            power_w=8,
        )
    )
    return ConfigEntry(
        data={"name": LAB},
        discovery_keys=MappingProxyType({}),
        domain="labpower",
        minor_version=1,
        options={},
        source=config_entries.SOURCE_USER,
        subentries_data=resources,
        title=LAB,
        unique_id=None,
        version=1,
    )


def _write_store(
    config_dir: Path, key: str, version: int, data: Any, minor_version: int = 1
) -> Path:
    """Write one file of HA's `.storage` as HA's Store does."""
    path = config_dir / ".storage" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = {
        "version": version,
        "minor_version": minor_version,
        "key": key,
        "data": data,
    }
    path.write_text(json.dumps(storage, indent=2, default=str), encoding="utf-8")
    return path


def write_http(config_dir: Path, port: int = PORT) -> None:
    """Store the HTTP settings as confirmed (HA 2026.10 keeps them in `.storage/http`).

    Given in configuration.yaml they would be migrated as a pending trial that HA reverts
    (and restarts for) after five minutes unless somebody confirms it, to a stored default
    on every interface; stored as confirmed, they are used as they are.
    """
    stable = {
        **HTTP_STORAGE_SCHEMA({"server_host": [HOST], "server_port": port}),
        HTTP_CONFIG_CREATED_AT: dt_util.utcnow().isoformat(),
        HTTP_CONFIG_ERROR: None,
        HTTP_CONFIG_ERROR_MESSAGE: None,
    }
    _write_store(
        config_dir,
        HTTP_STORAGE_KEY,
        HTTP_STORAGE_VERSION,
        {KEY_STABLE: stable, KEY_PENDING: None, KEY_YAML_MIGRATION_DONE: True},
        HTTP_STORAGE_MINOR_VERSION,
    )


def lab_entity(key: str) -> str:
    """An entity of the demo lab's own device (its totals), by its name's slug."""
    return f"sensor.{LAB.lower().replace(' ', '_')}_{key}"


def savings_graph() -> dict[str, Any]:
    """A statistics graph of the lab's money: avoided and spent, per day, a month long."""
    return {
        "type": "statistics-graph",
        "title": "Savings per day",
        "entities": [
            {"entity": lab_entity("cost_avoided"), "name": "Cost avoided"},
            {"entity": lab_entity("cost"), "name": "Cost"},
        ],
        "period": "day",
        "stat_types": ["change"],
        "chart_type": "bar",
        "days_to_show": 30,
    }


def dashboard() -> dict[str, Any]:
    """The demo's dashboard: the rack card of the demo lab (racks from `rack:` labels,
    savings today, this week and month in its header) above a graph of the savings per
    day, and the overview card: who holds what, until when.
    """
    return {
        "config": {
            "title": "Lab",
            "views": [
                {
                    "title": "Rack",
                    "path": "rack",
                    "type": "panel",
                    "cards": [
                        {
                            "type": "vertical-stack",
                            "cards": [
                                {
                                    "type": "custom:labpower-rack-card",
                                    "title": LAB,
                                    "lab": LAB,
                                    "group_by": "rack",
                                },
                                savings_graph(),
                            ],
                        }
                    ],
                },
                {
                    "title": "Overview",
                    "path": "overview",
                    "type": "panel",
                    "cards": [
                        {"type": "custom:labpower-overview-card", "title": "Who holds what"}
                    ],
                },
            ],
        }
    }


def write_dashboard(config_dir: Path) -> None:
    """Add the demo's dashboard (in the sidebar as *Lab*) with the rack card."""
    item = {
        "id": DASHBOARD_ID,
        "url_path": DASHBOARD_URL,
        "title": "Lab",
        "icon": "mdi:server-network",
        "show_in_sidebar": True,
        "require_admin": False,
        "mode": "storage",
    }
    _write_store(
        config_dir, DASHBOARDS_STORAGE_KEY, DASHBOARDS_STORAGE_VERSION, {"items": [item]}
    )
    _write_store(
        config_dir,
        DASHBOARD_CONFIG_KEY.format(DASHBOARD_ID),
        DASHBOARD_CONFIG_VERSION,
        dashboard(),
    )


def energy_prefs() -> EnergyPreferences:
    """The Energy dashboard's preferences: the lab's supply priced, each resource a device.

    The grid is the lab's own Energy total (the demo's machines are all there is), at
    PRICE_PER_KWH; each resource is an individual device with its Power sensor for the
    live power view. Avoided energy is no consumption: it is not here.
    """
    grid = {
        "type": "grid",
        "name": "Lab supply",
        "stat_energy_from": lab_entity("energy"),
        "number_energy_price": PRICE_PER_KWH,
        "power_config": {"stat_rate": lab_entity("power")},
        "stat_rate": lab_entity("power"),
        "cost_adjustment_day": 0.0,
    }
    devices = [
        {"stat_consumption": f"sensor.{slug}_energy", "stat_rate": f"sensor.{slug}_power"}
        for slug in SLUGS
    ]
    return {
        "energy_sources": ENERGY_SOURCE_SCHEMA([grid]),
        "device_consumption": [DEVICE_CONSUMPTION_SCHEMA(d) for d in devices],
        "device_consumption_water": [],
    }


def write_energy(config_dir: Path) -> None:
    """Store the Energy dashboard's preferences as its own settings page does."""
    _write_store(
        config_dir,
        ENERGY_STORAGE_KEY,
        ENERGY_STORAGE_VERSION,
        energy_prefs(),
        ENERGY_STORAGE_MINOR_VERSION,
    )


def write_dismissed_notices(config_dir: Path) -> None:
    """Dismiss HA's notice that running it from a virtual environment is deprecated.

    The demo runs Home Assistant from the project's venv on purpose (that is what a
    developer's checkout is); the notice is about the install method, not about labpower,
    and would be the only repair the demo shows. It stays under *Show ignored repairs*.
    """
    notice = {
        "created": dt_util.utcnow().isoformat(),
        "dismissed_version": HA_VERSION,
        "domain": "homeassistant",
        "is_persistent": False,
        "issue_id": "deprecated_method",
    }
    _write_store(
        config_dir,
        ISSUES_STORAGE_KEY,
        ISSUES_STORAGE_VERSION,
        {"issues": [notice]},
        ISSUES_STORAGE_MINOR_VERSION,
    )


def main(config_dir: str, port: int = PORT) -> None:
    """Seed <config_dir>: HTTP always, the demo lab and dashboard unless entries exist."""
    directory = Path(config_dir)
    write_http(directory, port)
    if (directory / ".storage" / config_entries.STORAGE_KEY).exists():
        return
    path = _write_store(
        directory,
        config_entries.STORAGE_KEY,
        config_entries.STORAGE_VERSION,
        {"entries": [demo_entry().as_dict()]},
        config_entries.STORAGE_VERSION_MINOR,
    )
    write_dashboard(directory)
    write_energy(directory)
    write_dismissed_notices(directory)
    print(f"Seeded the demo lab into {path}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(arg) for arg in sys.argv[2:3]))
