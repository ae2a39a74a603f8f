"""ServiceClient: the small HTTP client base every service-to-service client stands on.

The registry client (:mod:`hearth.common.registry_client`), the JWKS client
(:mod:`hearth.common.tokens.jwks`) and the registry's users lookup at auth are each a
subclass with the calls of one API. The base gives all of them the same rules:

- a base URL, a timeout per call and an injectable ``httpx`` transport (tests answer with
  ``httpx.MockTransport`` or ``httpx.ASGITransport``: no network);
- while entered (``async with client:``, in a lifespan) it keeps one pooled
  ``httpx.AsyncClient``; outside that, every call opens and closes its own connection, so
  a client nobody closes never leaves a socket behind;
- a call the other side does not answer (refused, reset, timed out) raises the subclass's
  :attr:`ServiceClient.unavailable` error (a :class:`~hearth.common.errors.HearthError`,
  503), never an ``httpx`` exception, and is logged once with the path and the error type
  (never the headers: they carry the caller's token).

What an answer means (its status codes, its body) is the subclass's business;
:meth:`ServiceClient.json_object` reads a JSON object or raises ``unavailable``.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from hearth.common.errors import HearthError, Unavailable

__all__ = ["ServiceClient"]

log = logging.getLogger(__name__)


class ServiceClient:
    """Calls of one HTTP API of another service (see the module docstring)."""

    name: ClassVar[str] = "the service"
    """Who answers, as error messages and logs name it (``the registry``, ``auth``)."""
    unavailable: ClassVar[type[HearthError]] = Unavailable
    """What a call raises when the other side does not answer."""

    def __init__(
        self,
        base_url: str = "",
        *,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._transport = transport
        self._pool: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, transport=self._transport
        )

    async def __aenter__(self) -> Self:
        if self._pool is None:
            self._pool = self._new_client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connection (if entered); later calls open their own again."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    async def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """Send one request (``url`` relative to the base URL, or absolute) and read it.

        Raises :attr:`unavailable` when no answer came; any status is returned as is.
        """
        try:
            if self._pool is not None:
                return await self._pool.request(method, url, **options)
            async with self._new_client() as client:
                return await client.request(method, url, **options)
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
            log.warning("%s did not answer", self.name, extra={"path": url, "error": reason})
            raise self.unavailable(f"{self.name} did not answer ({reason})") from None

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of ``response``; :attr:`unavailable` when it is anything else."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning(
                "%s answered something unexpected",
                self.name,
                extra={"path": response.url.path, "status": response.status_code},
            )
            raise self.unavailable(f"{self.name} answered something unexpected")
        return body
