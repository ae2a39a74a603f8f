"""HomeZones: a home's time zone, asked of the registry (day buckets are aligned to it).

``GET /registry/homes/{home}`` with the caller's own bearer token (only asked after the
registry allowed the caller to read the home). Zones are cached per home, at most
``max_entries``, and a home's is dropped on its registry change event (a home's
``timezone`` can be changed by its owner).
"""

from __future__ import annotations

import zoneinfo
from collections import OrderedDict

import httpx

from hearth.common.http import ServiceClient
from hearth.common.registry_client import RegistryUnavailable
from hearth.common.tokens import Caller

__all__ = ["HomeZones"]


class HomeZones(ServiceClient):
    """The time zone of each home, from the registry (see the module docstring)."""

    name = "the registry"
    unavailable = RegistryUnavailable

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout=timeout, transport=transport)
        self._max_entries = max_entries
        self._zones: OrderedDict[str, str] = OrderedDict()

    async def zone(self, caller: Caller, home: str) -> str:
        """The IANA time zone of ``home`` (``UTC`` when the registry's answer has none)."""
        cached = self._zones.get(home)
        if cached is not None:
            return cached
        response = await self.request(
            "GET", f"/registry/homes/{home}", headers={"Authorization": caller.authorization}
        )
        if response.status_code != 200:
            raise RegistryUnavailable(
                f"the registry answered HTTP {response.status_code} for the home's time zone"
            )
        zone = self.json_object(response).get("timezone") or "UTC"
        if not isinstance(zone, str) or zone not in zoneinfo.available_timezones():
            raise RegistryUnavailable("the registry answered an unknown time zone")
        self._zones[home] = zone
        while len(self._zones) > self._max_entries:
            self._zones.popitem(last=False)
        return zone

    def forget_home(self, home: str) -> None:
        """Drop the cached zone of ``home`` (its registry change event arrived)."""
        self._zones.pop(home, None)
