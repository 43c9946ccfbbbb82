"""How a signed envelope reaches another node: a small ``Transport`` interface with the real
implementation (``HttpTransport``, httpx with keep-alive) and an in-process one
(``LocalTransport``, for tests and the benchmark's baseline), instead of mocks.

``PeerUnavailable`` is raised by a transport when the peer did not answer at all (connection
refused, timeout, TLS or protocol failure). A peer that answers, even with an error status, is
not unavailable here: messaging decides whether the body is a signed answer.

Decision where docs/federation.md is silent: the transport-level ``PeerUnavailable`` and the
one ``messaging.send`` raises to its caller are the same class (an ``ApplicationError`` with the
code ``exchange.peer_unavailable``), so a caller catches one name whichever layer raised it.
"""

from __future__ import annotations

import threading
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from django.utils.translation import gettext_lazy as _

from pilar.core.errors import ApplicationError

SYNC_PATH = "/exchange/v1/sync/"


class PeerUnavailable(ApplicationError):
    """The peer did not answer; an outgoing message is kept and retried."""

    code = "exchange.peer_unavailable"
    status = 503
    title = _("The other institution did not answer. The message is kept and will be retried.")


class Transport(Protocol):
    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``url``; the HTTP status and the response body.
        Raises ``PeerUnavailable`` when the peer did not answer."""
        ...


def endpoint_url(endpoint: str, action: str) -> str:
    """The URL a member receives ``action`` at: its endpoint + ``/exchange/v1/sync/<action>``."""
    return endpoint.rstrip("/") + SYNC_PATH + action


class HttpTransport:
    """httpx with one pooled client per process: keep-alive connections matter at hundreds of
    exchanges a second (a TLS handshake per message would dominate)."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(
                        headers={"Content-Type": "application/json"},
                        limits=httpx.Limits(max_keepalive_connections=32, max_connections=64),
                        follow_redirects=False,
                    )
        return self._client

    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        try:
            response = self._get_client().post(url, content=body, timeout=timeout)
        except httpx.HTTPError as error:
            raise PeerUnavailable(f"{url}: {type(error).__name__}: {error}") from error
        return response.status_code, response.content

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class LocalTransport:
    """Delivers to ``messaging.receive`` of this very process and database: a node talking to
    itself (tests) or the in-process baseline of the benchmark. ``unavailable`` makes every
    post fail like a peer that is down."""

    def __init__(self, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable
        self.posted: list[tuple[str, bytes]] = []

    def post(self, url: str, body: bytes, timeout: float) -> tuple[int, bytes]:
        from pilar.exchange.messaging import receive, response_body

        self.posted.append((url, body))
        if self.unavailable:
            raise PeerUnavailable(f"{url}: unavailable (LocalTransport)")
        path = urlsplit(url).path
        if SYNC_PATH not in path:
            return 404, b'{"detail": "not found"}'
        action = path.split(SYNC_PATH, 1)[1]
        status, envelope = receive(action, body, len(body))
        return status, response_body(envelope)


_transport: Transport | None = None


def get_transport() -> Transport:
    global _transport
    if _transport is None:
        _transport = HttpTransport()
    return _transport


def set_transport(transport: Transport | None) -> Transport | None:
    """Replace the process's transport (tests); returns the previous one. ``None`` goes back
    to the default HTTP transport on next use."""
    global _transport
    previous = _transport
    _transport = transport
    return previous
