"""Device protocol clients: asyncio, no Home Assistant imports."""
