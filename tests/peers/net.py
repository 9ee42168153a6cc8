"""What every local peer fixture needs: a free port, sockets while starting, a clean stop."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import socket
import subprocess

import pytest_socket

HOST = "127.0.0.1"


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing is bound to right now (TCP, or UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sockets_allowed() -> Iterator[None]:
    """Let a module or session fixture open sockets (connects stay limited to 127.0.0.1)."""
    guarded = socket.socket
    pytest_socket.enable_socket()
    try:
        yield
    finally:
        socket.socket = guarded  # type: ignore[misc]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate a peer and wait for it (killed if it does not go within 5 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
