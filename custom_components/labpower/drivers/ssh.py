"""SSH shutdown: run a power-off command on the machine itself, with a pinned host key."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from ..core.switching import ConfigurationSwitchError, TransientSwitchError

_LOGGER = logging.getLogger(__name__)

SSH_AUTH = "ssh_auth"
SSH_HOST_KEY_CHANGED = "ssh_host_key_changed"
DEFAULT_COMMAND = "sudo systemctl poweroff"
_FINGERPRINT_PREFIX = "SHA256:"


def host_key_fingerprint(key: str) -> str:
    """The SHA256 fingerprint ("SHA256:...") of a public key in OpenSSH format."""
    return _import_host_key(key).get_fingerprint("sha256")


def _import_host_key(text: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as err:
        raise ValueError(
            "Not an SSH host key: expected a public key in OpenSSH format "
            f"('ssh-ed25519 AAAA...') or a fingerprint ('SHA256:...'): {err}"
        ) from None


def _normal_fingerprint(fingerprint: str) -> str:
    # ssh-keygen prints no base64 padding; some tools do: compare without it.
    digest = fingerprint.strip()[len(_FINGERPRINT_PREFIX) :]
    return _FINGERPRINT_PREFIX + digest.rstrip("=")


def import_client_key(text: str) -> asyncssh.SSHKey:
    """A private key from its text (OpenSSH or PEM, unencrypted); ValueError if unusable."""
    try:
        return asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError) as err:
        raise ValueError(f"Not a usable SSH private key: {err}") from None


def _export(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


class _HostKeyCheck(asyncssh.SSHClient):
    """Checks the server's host key during the handshake, before any credential is sent.

    asyncssh asks this only for keys it was not told to trust: with a pinned public key
    any other key is a change; with a pinned fingerprint the key must match it; with
    nothing pinned (first use) every key is accepted.
    """

    def __init__(self, fingerprint: str | None, pinned_key: bool) -> None:
        self._fingerprint = fingerprint
        self._pinned_key = pinned_key
        self.seen: asyncssh.SSHKey | None = None
        self.changed = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.seen = key
        if self._pinned_key:
            self.changed = True
        elif self._fingerprint is not None:
            self.changed = (
                _normal_fingerprint(key.get_fingerprint("sha256")) != self._fingerprint
            )
        return not self.changed


class SshShutdown:
    """Shuts a machine down by running a command over SSH (key or password).

    The server's host key is pinned: `known_host_key` is a public key in OpenSSH format
    or its SHA256 fingerprint. A different key raises ConfigurationSwitchError with the
    issue "ssh_host_key_changed" during the handshake, so neither the credentials nor
    the command reach that server; `seen_host_key` then holds the new key (for a repair
    that accepts it). With no key stored (first use) the key the server shows is
    accepted and pinned for this object's later runs, `seen_host_key` holds it and
    `on_first_key(key)` is called, once the login succeeded, so the caller can store
    it. A fingerprint is compared with the key the server shows when offered every
    plain key type (Ed25519 first): store the fingerprint of that key, or the key
    itself. Nothing is read from ~/.ssh (no config, no default keys, no agent).
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        *,
        username: str,
        password: str | None = None,
        client_key: str | None = None,
        command: str = DEFAULT_COMMAND,
        known_host_key: str | None = None,
        on_first_key: Callable[[str], None] | None = None,
        connect_timeout: float = 10.0,
        command_timeout: float = 10.0,
    ) -> None:
        """Prepare the shutdown; ValueError for a malformed key or no credential at all.

        `client_key` is a private key's text (PEM or OpenSSH format, unencrypted).
        `connect_timeout` bounds the TCP connection, the handshake and the login;
        `command_timeout` bounds the command once started.
        """
        if password is None and client_key is None:
            raise ValueError("SSH shutdown needs a password or a client key")
        self.host = host
        self.port = port
        self.username = username
        self.command = command
        self._password = password
        self._client_keys: list[asyncssh.SSHKey] | None = None
        if client_key is not None:
            self._client_keys = [import_client_key(client_key)]
        self._on_first_key = on_first_key
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._known_key: asyncssh.SSHKey | None = None
        self._known_fingerprint: str | None = None
        self.known_host_key = known_host_key
        self.seen_host_key: str | None = None

    @property
    def known_host_key(self) -> str | None:
        """The pinned host key (OpenSSH format) or fingerprint; None before first use."""
        return self._known_host_key

    @known_host_key.setter
    def known_host_key(self, value: str | None) -> None:
        self._known_key = None
        self._known_fingerprint = None
        if value is not None:
            value = value.strip()
            if value[: len(_FINGERPRINT_PREFIX)].upper() == _FINGERPRINT_PREFIX:
                self._known_fingerprint = _normal_fingerprint(value)
            else:
                self._known_key = _import_host_key(value)
        self._known_host_key = value

    @property
    def description(self) -> str:
        """For logs and diagnostics."""
        return f"ssh {self.username}@{self.host}:{self.port}"

    async def run(self) -> None:
        """Connect, check the host key, run the command.

        Returns once the command exited with status 0, was killed by a signal, or the
        connection dropped while it ran (the host going down): success means the
        shutdown was asked for; whether the host went down is for the availability
        check to tell. ConfigurationSwitchError: host key changed ("ssh_host_key_changed"),
        login refused ("ssh_auth"), the command failed (it exited with a status other
        than 0). TransientSwitchError: refused, unreachable, timed out.
        """
        where = f"{self.host}:{self.port}"
        check = _HostKeyCheck(self._known_fingerprint, self._known_key is not None)
        # A pinned key: asyncssh offers only its algorithms. Otherwise plain keys only,
        # so that a server with a host certificate shows (and pins) its key.
        host_key_algs: list[str] | tuple[()] = (
            ()
            if self._known_key is not None
            else [a.decode() for a in get_default_public_key_algs()]
        )
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await asyncssh.connect(
                    self.host,
                    self.port,
                    username=self.username,
                    password=self._password,
                    client_keys=self._client_keys,
                    client_factory=lambda: check,
                    known_hosts=(
                        [] if self._known_key is None else [self._known_key],
                        [],
                        [],
                    ),
                    server_host_key_algs=host_key_algs,
                    config=None,
                    agent_path=None,
                    gss_host=None,
                    connect_timeout=self._connect_timeout,
                )
        except asyncssh.HostKeyNotVerifiable as err:
            if check.changed and check.seen is not None:
                self.seen_host_key = _export(check.seen)
                raise ConfigurationSwitchError(
                    f"The SSH host key of {where} changed (it is now "
                    f"{check.seen.get_fingerprint('sha256')}): not running the shutdown "
                    "command (if the machine was reinstalled, accept the new key)",
                    issue=SSH_HOST_KEY_CHANGED,
                ) from err
            raise ConfigurationSwitchError(  # pragma: no cover - no certificate is offered
                f"The SSH host key of {where} cannot be verified: {err}"
            ) from err
        except asyncssh.PermissionDenied as err:
            raise ConfigurationSwitchError(
                f"SSH login as {self.username} on {where} refused", issue=SSH_AUTH
            ) from err
        except asyncssh.KeyExchangeFailed as err:
            if self._known_key is not None and "host key" in str(err):
                # Only the stored key's type is offered: the server has none of it.
                raise ConfigurationSwitchError(
                    f"{where} has no SSH host key of the stored type "
                    f"({self._known_key.get_algorithm()}): not running the shutdown "
                    "command (if the machine was reinstalled, accept the new key)",
                    issue=SSH_HOST_KEY_CHANGED,
                ) from err
            raise ConfigurationSwitchError(
                f"SSH key exchange with {where} failed: {err}"
            ) from err
        except TimeoutError as err:
            raise TransientSwitchError(
                f"SSH to {where}: no connection within {self._connect_timeout:g} s"
            ) from err
        except (OSError, asyncssh.Error) as err:
            raise TransientSwitchError(f"SSH to {where}: {err}") from err
        async with conn:
            self._remember(conn.get_server_host_key())
            await self._run_command(conn, where)

    def _remember(self, key: asyncssh.SSHKey | None) -> None:
        if key is None:  # pragma: no cover - asyncssh always has one after a handshake
            return
        text = _export(key)
        self.seen_host_key = text
        if self._known_host_key is None:
            _LOGGER.info(
                "%s: first use, host key %s accepted",
                self.description,
                key.get_fingerprint("sha256"),
            )
            self.known_host_key = text
            if self._on_first_key is not None:
                self._on_first_key(text)

    async def _run_command(
        self, conn: asyncssh.SSHClientConnection, where: str
    ) -> None:
        started = False
        try:
            async with asyncio.timeout(self._command_timeout):
                process = await conn.create_process(
                    self.command, stdin=asyncssh.DEVNULL
                )
                started = True
                result = await process.wait()
        except TimeoutError as err:
            raise TransientSwitchError(
                f"{self.command!r} on {where} did not finish within "
                f"{self._command_timeout:g} s"
            ) from err
        except asyncssh.ChannelOpenError as err:
            raise TransientSwitchError(
                f"SSH to {where}: cannot open a session: {err}"
            ) from err
        except (OSError, asyncssh.DisconnectError) as err:  # pragma: no cover
            # asyncssh 2.24 reports a drop as a ChannelOpenError before the command and
            # as a result without exit status after it; kept for versions that raise.
            if not started:
                raise TransientSwitchError(
                    f"SSH to {where}: connection lost before the command started: {err}"
                ) from err
            _LOGGER.debug("%s: connection dropped: %s", self.description, err)
            return
        if result.exit_status is None or result.exit_signal is not None:
            # The connection dropped or the command was killed: the host is going down.
            _LOGGER.debug("%s: %r ended without a status", self.description, result)
            return
        if result.exit_status != 0:
            detail = str(result.stderr or result.stdout or "").strip().splitlines()
            raise ConfigurationSwitchError(
                f"{self.command!r} on {where} exited with status {result.exit_status}"
                + (f": {detail[0]}" if detail else "")
            )
