"""Text messages through an HTTP SMS gateway: ``POST <REMOTESIGN_SMS_GATEWAY_URL>`` with the JSON
``{"to": "<number>", "text": "<message>"}`` and, when configured, ``Authorization: Bearer
<REMOTESIGN_SMS_GATEWAY_TOKEN>``; any 2xx answer means accepted. Most gateways (or a small
adapter in front of one) take this form."""

from __future__ import annotations

import httpx


class SmsError(Exception):
    """The gateway did not accept the message."""


class HttpSmsGateway:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        parts = httpx.URL(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise ValueError(f"REMOTESIGN_SMS_GATEWAY_URL must be an http(s) URL, got {url!r}")
        self.url = url
        self.token = token
        self.timeout = timeout

    def send(self, to: str, text: str) -> None:
        headers = {"User-Agent": "remotesign"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            r = httpx.post(self.url, json={"to": to, "text": text}, headers=headers, timeout=self.timeout,
                           follow_redirects=False, trust_env=False)
        except httpx.HTTPError as exc:
            raise SmsError(f"the SMS gateway cannot be reached: {exc}") from exc
        if not 200 <= r.status_code < 300:
            raise SmsError(f"the SMS gateway answered HTTP {r.status_code}")
