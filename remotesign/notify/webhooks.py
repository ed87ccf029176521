"""Signed HTTP callbacks to relying parties: a JSON body POSTed to the URL the client gave, with
``X-Remotesign-Timestamp`` (Unix seconds) and ``X-Remotesign-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``<timestamp>.<body>`` under the client's callback key. The receiver recomputes it
and refuses a timestamp older than a few minutes (replay).

The connection goes to an address the operator allows (``REMOTESIGN_CALLBACK_ALLOWED_HOSTS``, the
same rules as the TSA allow-list, pinned so a second DNS answer cannot redirect it), without
redirects or proxies, under a total deadline; the answer's body is not read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import httpx

from remotesign.trust.tsa_clients.credentials import client_context
from remotesign.trust.tsa_clients.errors import TsaError
from remotesign.trust.tsa_clients.policy import TsaUrlPolicy

TIMESTAMP_HEADER = "X-Remotesign-Timestamp"
SIGNATURE_HEADER = "X-Remotesign-Signature"


class DeliveryFailed(Exception):
    """The receiver could not be reached, was not allowed, or did not answer 2xx."""


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``)."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, policy: TsaUrlPolicy, timeout: float = 10.0) -> None:
        self.policy = policy
        self.timeout = timeout

    async def post(self, url: str, body: bytes, secret: bytes, *, event: str) -> int:
        """POST ``body`` signed; returns the status (2xx) or raises DeliveryFailed."""
        target = httpx.URL(url)
        if target.scheme not in ("http", "https") or not target.host:
            raise DeliveryFailed("the callback URL is not an absolute http(s) URL")
        try:
            address = await self.policy.pin(target)
        except TsaError as exc:
            raise DeliveryFailed(exc.message.replace("TSA", "callback")) from exc
        timestamp = str(int(time.time()))
        headers = {"Host": target.netloc.decode("ascii"), "Content-Type": "application/json",
                   "User-Agent": "remotesign", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: signature(secret, timestamp, body), "X-Remotesign-Event": event}
        extensions: dict[str, Any] = {}
        if target.scheme == "https" and not _is_ip(target.host):
            extensions["sni_hostname"] = target.host
        try:
            async with asyncio.timeout(self.timeout):
                async with httpx.AsyncClient(verify=client_context(), trust_env=False, follow_redirects=False,
                                             timeout=httpx.Timeout(self.timeout),
                                             limits=httpx.Limits(max_connections=1, max_keepalive_connections=0)
                                             ) as client:
                    async with client.stream("POST", target.copy_with(host=address), content=body, headers=headers,
                                             extensions=extensions) as response:
                        status = response.status_code  # the answer's body is never read
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise DeliveryFailed(f"no answer within {self.timeout:g} s") from exc
        except (httpx.TransportError, OSError) as exc:
            raise DeliveryFailed(f"cannot connect: {exc}"[:300]) from exc
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the receiver answered HTTP {status}")
        return status


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False
