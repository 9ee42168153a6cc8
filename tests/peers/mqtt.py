"""A real mosquitto broker on 127.0.0.1 and small paho-mqtt peers for it.

The peers run paho's network loop on their own thread; their blocking methods are meant to
be called from an executor (`hass.async_add_executor_job`), and `stop` joins the thread so
no thread outlives a test.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from pathlib import Path
import socket
import subprocess
import threading
import time

from paho.mqtt.client import (
    CallbackAPIVersion,
    Client,
    ConnectFlags,
    MQTTMessage,
    MQTTProtocolVersion,
)
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .net import free_port, stop_process

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"


@dataclass
class Broker:
    """A mosquitto process listening on 127.0.0.1:port."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, directory: Path, timeout: float = 10.0) -> Broker:
        """Start mosquitto with a config in `directory`; return once it accepts."""
        port = free_port()
        config = directory / "mosquitto.conf"
        config.write_text(
            f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n",
            encoding="utf-8",
        )
        log = directory / "mosquitto.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - a fixed local binary
                [MOSQUITTO, "-c", str(config), "-v"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        broker = cls(port, process, log)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {process.returncode}: "
                    + log.read_text(encoding="utf-8", errors="replace")
                )
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=0.5).close()
                return broker
            if time.monotonic() > deadline:
                broker.stop()
                raise RuntimeError(f"mosquitto does not accept on {HOST}:{port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Terminate mosquitto and wait for it."""
        stop_process(self.process)


class PahoPeer:
    """One MQTT 3.1.1 connection with paho's network loop on a thread of its own."""

    def __init__(
        self, port: int, client_id: str, will: tuple[str, str] | None = None
    ) -> None:
        """Connect later (`start`) as `client_id`; `will` is (topic, retained payload)."""
        self.port = port
        self.client_id = client_id
        self.will = will
        self._client: Client | None = None
        self._thread: threading.Thread | None = None
        self._connected = threading.Event()
        self._acked: set[int] = set()
        self._cond = threading.Condition()

    # Life cycle (blocking: call from an executor)

    def start(self, timeout: float = 5.0) -> None:
        """Connect, start the network thread, wait for the broker's CONNACK."""
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        if self.will is not None:
            client.will_set(self.will[0], self.will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._connected.clear()
        with self._cond:
            self._acked.clear()  # a new client counts its message ids from 1 again
        client.connect(HOST, self.port, keepalive=60)
        client.loop_start()
        self._client = client
        self._thread = next(
            thread
            for thread in threading.enumerate()
            if thread.name == f"paho-mqtt-client-{self.client_id}"
        )
        if not self._connected.wait(timeout):
            raise TimeoutError(f"{self.client_id}: no CONNACK")
        self.connected()

    def stop(self) -> None:
        """Disconnect cleanly (the broker drops the will) and join the thread."""
        if self._client is not None:
            self._client.disconnect()
        self._join()

    def drop(self) -> None:
        """Lose the connection without DISCONNECT, as a crash or a dead link does.

        The broker then publishes the will.
        """
        if self._client is not None:
            sock = self._client.socket()
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        self._join()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), f"{self.client_id}: thread still runs"
        self._client = None
        self._thread = None

    # Messaging

    def subscribe(self, topic: str, timeout: float = 5.0) -> None:
        """Subscribe and wait for the SUBACK (blocking)."""
        assert self._client is not None
        _, mid = self._client.subscribe(topic, qos=0)
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._acked, timeout):
                raise TimeoutError(f"{self.client_id}: no SUBACK for {topic}")

    def publish(
        self, topic: str, payload: str, *, retain: bool = False, wait: bool = True
    ) -> None:
        """Publish; with `wait` (not from paho callbacks) until the broker has it."""
        assert self._client is not None
        info = self._client.publish(topic, payload, qos=1 if wait else 0, retain=retain)
        if wait:
            info.wait_for_publish(timeout=5)
            if not info.is_published():
                raise TimeoutError(f"{self.client_id}: {topic} not acknowledged")

    # Hooks for subclasses (called on the network thread)

    def connected(self) -> None:
        """The broker accepted the connection (called by `start`)."""

    def received(self, topic: str, payload: str) -> None:
        """A message arrived on a subscribed topic (network thread)."""

    # paho callbacks

    def _on_connect(
        self,
        client: Client,
        userdata: object,
        flags: ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason_code.is_failure:
            self._connected.set()

    def _on_subscribe(
        self,
        client: Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def _on_message(self, client: Client, userdata: object, msg: MQTTMessage) -> None:
        self.received(msg.topic, msg.payload.decode("utf-8", errors="replace"))


class Recorder(PahoPeer):
    """Records every message published under a topic filter (a bus monitor)."""

    def __init__(self, port: int, client_id: str, topic: str) -> None:
        """Listen to `topic` (a filter such as cmnd/plug/#) once started."""
        super().__init__(port, client_id)
        self.topic = topic
        self._messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def connected(self) -> None:
        """Subscribe to the filter."""
        self.subscribe(self.topic)

    def received(self, topic: str, payload: str) -> None:
        """Keep the message."""
        with self._lock:
            self._messages.append((topic, payload))

    def messages(
        self, match: Callable[[str], bool] = lambda topic: True
    ) -> list[tuple[str, str]]:
        """The messages seen so far whose topic matches."""
        with self._lock:
            return [(t, p) for t, p in self._messages if match(t)]
