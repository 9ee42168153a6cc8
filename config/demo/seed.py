"""Seed the development configuration with a demo Lab, unless it already has config entries.

Run by scripts/develop inside the project's Python; it writes HA's own config entry storage
through HA's own classes, so the demo lab appears exactly as one made in the UI.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from types import MappingProxyType
from typing import Any

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry, ConfigSubentryData

DEMO_POLICY = {
    "off_delay": 30,
    "min_off_time": 5,
    "start_timeout": 90,
    "stop_timeout": 20,
    "default_ttl": 900,
    "max_ttl": 86400,
    "graceful_off": True,
}


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
            ("builder-1", "builder_1", ["builder", "amd64"], 180),
            ("builder-2", "builder_2", ["builder", "amd64"], 220),
            ("ci-runner", "ci_runner", ["runner", "arm64"], 45),
        )
    ]
    resources.append(
        _resource(
            "network-switch",
            switcher_type="entity",
            power_entity=relay("switch"),
            checker_type="none",
            labels=["network"],
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
            labels=["maas", "arm64"],
            power_w=8,
        )
    )
    return ConfigEntry(
        data={"name": "Demo lab"},
        discovery_keys=MappingProxyType({}),
        domain="labpower",
        minor_version=1,
        options={},
        source=config_entries.SOURCE_USER,
        subentries_data=resources,
        title="Demo lab",
        unique_id=None,
        version=1,
    )


def main(config_dir: str) -> None:
    """Write the demo Lab into <config_dir>/.storage unless entries exist already."""
    path = Path(config_dir) / ".storage" / config_entries.STORAGE_KEY
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = {
        "version": config_entries.STORAGE_VERSION,
        "minor_version": config_entries.STORAGE_VERSION_MINOR,
        "key": config_entries.STORAGE_KEY,
        "data": {"entries": [demo_entry().as_dict()]},
    }
    path.write_text(json.dumps(storage, indent=2, default=str), encoding="utf-8")
    print(f"Seeded the demo lab into {path}")


if __name__ == "__main__":
    main(sys.argv[1])
