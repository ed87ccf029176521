"""Fortress-style API facade (Viafirma Fortress wire format): the client token and the user's
authorization, the user API, signature requests and the Extend Signature API, under ``/fortress``
so a client configured with ``{fortress_url}`` works with ``http(s)://<remotesign>/fortress``.
Wire format only; every operation is a call into ``remotesign.core``. Errors are
``{"error", "error_description"}`` (api/errors.py)."""

from fastapi import APIRouter

from remotesign.api.fortress import authorize, extend, signature, token, users

PREFIX = "/fortress"

router = APIRouter(prefix=PREFIX)
for _module in (token, authorize, extend, signature, users):
    router.include_router(_module.router)
