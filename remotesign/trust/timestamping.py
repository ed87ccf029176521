"""Time-stamp clients for the signing formats: the built-in TSA called in-process (no HTTP hop to
ourselves), or any RFC 3161 server by URL (``REMOTESIGN_TSA_URL``). Both are pyHanko
``TimeStamper``s: PAdES and CAdES use them directly, the XML formats through
:func:`remotesign.formats.interface.timestamp_function`."""

from __future__ import annotations

import asyncio

from asn1crypto import tsp
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper

from remotesign.trust.tsa import TimeStampAuthority


class BuiltinTimeStamper(TimeStamper):
    """The service's own TSA, without a network round trip."""

    def __init__(self, tsa: TimeStampAuthority) -> None:
        super().__init__()
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        reply = await asyncio.to_thread(self.tsa.respond, req.dump())
        return tsp.TimeStampResp.load(reply.der)


def make_timestamper(tsa: TimeStampAuthority, url: str | None, timeout: float) -> TimeStamper:
    return HTTPTimeStamper(url, timeout=timeout) if url else BuiltinTimeStamper(tsa)
