"""A simulated one-relay Tasmota plug (firmware 14.x) on a real MQTT broker.

It speaks what the firmware speaks with SetOption19 0 (Tasmota discovery, HATasmota's
schema): on connecting it subscribes to `cmnd/<topic>/#`, publishes `Online` on its LWT
topic and its retained discovery messages `tasmota/discovery/<MAC>/config` and
`.../sensors`; its will is `Offline` on the LWT topic. It answers `POWER`/`POWER1`
(ON, OFF, TOGGLE, 1, 0, 2, or empty to ask) with `stat/<topic>/RESULT` {"POWER": ...} and
`stat/<topic>/POWER`, `STATE` with the state on `stat/<topic>/RESULT`, and `STATUS n` with
`stat/<topic>/STATUSn`. The relay keeps its state while the plug is offline, as a real plug
that lost its Wi-Fi does.
"""

from __future__ import annotations

from datetime import UTC, datetime
import itertools
import json
import threading
import time
from typing import Any

from .mqtt import HOST, PahoPeer

DISCOVERY_PREFIX = "tasmota/discovery"
FIRMWARE = "14.4.1"
_macs = itertools.count(1)

ON_PAYLOADS = {"ON", "1"}
OFF_PAYLOADS = {"OFF", "0"}
TOGGLE_PAYLOADS = {"TOGGLE", "2"}


def _uptime(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}T{hours:02d}:{minutes:02d}:{secs:02d}"


class TasmotaPlug(PahoPeer):
    """One relay, no sensors, firmware-shaped MQTT traffic."""

    def __init__(self, port: int, name: str, *, power: bool = False) -> None:
        """A plug called `name` (the HA entity becomes switch.<name>) with a fresh MAC."""
        self.mac = f"02A0C0{next(_macs):06X}"
        self.topic = f"tasmota_{self.mac[-6:]}"
        self.name = name
        self.power = power
        self.lwt_topic = f"tele/{self.topic}/LWT"
        super().__init__(
            port, f"DVES_{self.mac[-6:]}", will=(self.lwt_topic, "Offline")
        )
        self._booted = time.monotonic()
        self._mqtt_count = 0
        self._commands: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    # What the firmware announces

    @property
    def config_topic(self) -> str:
        """The retained discovery topic of the device."""
        return f"{DISCOVERY_PREFIX}/{self.mac}/config"

    @property
    def sensors_topic(self) -> str:
        """The retained discovery topic of the device's sensors."""
        return f"{DISCOVERY_PREFIX}/{self.mac}/sensors"

    def discovery(self) -> dict[str, Any]:
        """The discovery message, as the firmware builds it for one relay."""
        none8: list[str | None] = [None] * 8
        return {
            "ip": HOST,
            "dn": self.name,
            "fn": [self.name, *none8[1:]],
            "hn": f"{self.topic.replace('_', '-')}-{int(self.mac[-4:], 16) & 0x1FFF:04d}",
            "mac": self.mac,
            "md": "Sonoff S26",
            "ty": 0,
            "if": 0,
            "cam": 0,
            "ofln": "Offline",
            "onln": "Online",
            "state": ["OFF", "ON", "TOGGLE", "HOLD"],
            "sw": FIRMWARE,
            "t": self.topic,
            "ft": "%prefix%/%topic%/",
            "tp": ["cmnd", "stat", "tele"],
            "rl": [1, 0, 0, 0, 0, 0, 0, 0],
            "swc": [-1] * 8,
            "swn": none8,
            "btn": [0] * 8,
            "so": {
                "4": 0,
                "11": 0,
                "13": 0,
                "17": 0,
                "20": 0,
                "30": 0,
                "68": 0,
                "73": 0,
                "82": 0,
                "114": 0,
                "117": 0,
            },
            "lk": 0,
            "lt_st": 0,
            "bat": 0,
            "dslp": 0,
            "sho": [],
            "sht": [],
            "ver": 1,
        }

    def sensors(self) -> dict[str, Any]:
        """The sensors message of a plug without sensors."""
        return {"sn": {"Time": self._time()}, "ver": 1}

    def state(self) -> dict[str, Any]:
        """What STATE and tele/STATE report."""
        uptime = int(time.monotonic() - self._booted)
        return {
            "Time": self._time(),
            "Uptime": _uptime(uptime),
            "UptimeSec": uptime,
            "Heap": 26,
            "SleepMode": "Dynamic",
            "Sleep": 50,
            "LoadAvg": 19,
            "MqttCount": self._mqtt_count,
            "POWER": self._power_word(),
            "Wifi": {
                "AP": 1,
                "SSId": "lab",
                "BSSId": "02:00:00:00:00:01",
                "Channel": 6,
                "Mode": "11n",
                "RSSI": 100,
                "Signal": -42,
                "LinkCount": 1,
                "Downtime": "0T00:00:03",
            },
        }

    def status(self, number: int) -> dict[str, Any] | None:
        """The STATUS <number> answer (the parts HATasmota reads)."""
        match number:
            case 1:
                return {
                    "StatusPRM": {
                        "GroupTopic": "tasmotas",
                        "RestartReason": "Power On",
                        "Uptime": _uptime(int(time.monotonic() - self._booted)),
                        "BootCount": 1,
                    }
                }
            case 2:
                return {
                    "StatusFWR": {
                        "Version": f"{FIRMWARE}(tasmota)",
                        "Hardware": "ESP8266EX",
                    }
                }
            case 5:
                return {
                    "StatusNET": {
                        "Hostname": self.discovery()["hn"],
                        "IPAddress": HOST,
                        "Mac": ":".join(
                            self.mac[i : i + 2] for i in range(0, len(self.mac), 2)
                        ),
                    }
                }
            case 11:
                return {"StatusSTS": self.state()}
        return None

    # Life cycle

    def connected(self) -> None:
        """What the firmware does on every MQTT connection."""
        self._mqtt_count += 1
        self.subscribe(f"cmnd/{self.topic}/#")
        self.publish(self.lwt_topic, "Online", retain=True)
        self.publish(self.config_topic, json.dumps(self.discovery()), retain=True)
        self.publish(self.sensors_topic, json.dumps(self.sensors()), retain=True)
        self.publish(f"tele/{self.topic}/STATE", json.dumps(self.state()))

    def retire(self) -> None:
        """Take the device off the broker for good: clear its retained messages."""
        if self._client is None:
            self.start()
        for topic in (self.config_topic, self.sensors_topic, self.lwt_topic):
            self.publish(topic, "", retain=True)
        self.stop()

    # Commands

    def commands(self, command: str | None = None) -> list[tuple[str, str]]:
        """(command, payload) received so far, commands upper-cased; POWER1 is POWER."""
        with self._lock:
            return [c for c in self._commands if command is None or c[0] == command]

    def power_commands(self) -> list[str]:
        """The payloads of the POWER commands received so far."""
        return [payload for _, payload in self.commands("POWER")]

    def received(self, topic: str, payload: str) -> None:
        """Execute a command, answer as the firmware does (network thread)."""
        command = topic.rpartition("/")[2].upper()
        if command == "POWER1":
            command = "POWER"
        with self._lock:
            self._commands.append((command, payload))
        word = payload.strip().upper()
        if command == "POWER":
            if word in ON_PAYLOADS:
                self.power = True
            elif word in OFF_PAYLOADS:
                self.power = False
            elif word in TOGGLE_PAYLOADS:
                self.power = not self.power
            elif word:
                self._result({"Command": "Error"})
                return
            self._result({"POWER": self._power_word()})
            self.publish(f"stat/{self.topic}/POWER", self._power_word(), wait=False)
        elif command == "STATE":
            self._result(self.state())
        elif command == "STATUS":
            number = int(word) if word.isdigit() else 0
            answer = self.status(number)
            if answer is not None:
                self.publish(
                    f"stat/{self.topic}/STATUS{number}", json.dumps(answer), wait=False
                )
        else:
            self._result({"Command": "Unknown"})

    def _result(self, body: dict[str, Any]) -> None:
        self.publish(f"stat/{self.topic}/RESULT", json.dumps(body), wait=False)

    def _power_word(self) -> str:
        return "ON" if self.power else "OFF"

    @staticmethod
    def _time() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
