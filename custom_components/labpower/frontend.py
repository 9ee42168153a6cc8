"""The rack card: served by the integration and loaded by the frontend (no separate install)."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http.server import StaticPathConfig
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration

from .const import DOMAIN

CARD_FILE = "labpower-rack-card.js"
CARD_PATH = Path(__file__).parent / "frontend" / CARD_FILE
URL_BASE = "/labpower_static"
CARD_URL = f"{URL_BASE}/{CARD_FILE}"


async def async_register_card(hass: HomeAssistant) -> str:
    """Serve the card's module and have the frontend load it; the URL it loads."""
    integration = await async_get_integration(hass, DOMAIN)
    # The version in the URL makes browsers fetch the new card after an update; without
    # cache headers a browser revalidates the small file, so an edited card shows at once.
    url = f"{CARD_URL}?v={integration.version}"
    await hass.http.async_register_static_paths(
        [StaticPathConfig(CARD_URL, str(CARD_PATH), cache_headers=False)]
    )
    # Without the frontend (a headless install, tests) there is nobody to load it.
    if "frontend" in hass.config.components:
        add_extra_js_url(hass, url)
    return url
