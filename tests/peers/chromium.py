"""Headless Chromium (Debian's, never a downloaded one) on a Home Assistant of hass_process.

`open_logged_in` opens a page as the owner and refuses every request off 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
import json
from pathlib import Path
import time
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Request, Route, async_playwright

from .hass_process import HOST, Server, clean_environment

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-quic",
    "--disable-component-update",
    "--disable-sync",
]
# The resources of the demo lab (scripts/develop seeds it).
DEMO = {"builder-1", "builder-2", "ci-runner", "network-switch", "pi-maas"}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's, never a downloaded one); requests elsewhere are refused."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            env=clean_environment(),
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_logged_in(
    browser: Browser, server: Server, refused: list[str], path: str, **context: Any
) -> Page:
    """`path` in a new page, logged in as the owner; any request off 127.0.0.1 is refused.

    `context` adds browser-context options (viewport, color_scheme, timezone_id...).
    """
    browser_context = await browser.new_context(
        **{"service_workers": "block", "locale": "en-US", **context}
    )
    tokens = server.tokens
    stored = {
        "access_token": tokens["access_token"],
        "token_type": tokens["token_type"],
        "expires_in": tokens["expires_in"],
        "refresh_token": tokens["refresh_token"],
        "hassUrl": server.url,
        "clientId": f"{server.url}/",
        "expires": int(time.time() * 1000) + tokens["expires_in"] * 1000,
    }
    await browser_context.add_init_script(
        f"window.localStorage.setItem('hassTokens', {json.dumps(json.dumps(stored))});"
    )

    async def local_only(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == HOST or request.url.startswith("data:"):
            await route.continue_()
        else:
            refused.append(request.url)
            await route.abort()

    await browser_context.route("**/*", local_only)
    page = await browser_context.new_page()
    await page.goto(f"{server.url}/{path}")
    return page
