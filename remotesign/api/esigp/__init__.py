"""TrustedX eSigP facade (``/trustedx-resources``): sign identities, raw signatures with server-held
keys (SCAL2: a consent bound to the digests), signature processes approved on the user's device,
and the OpenID ``users/me`` profile. Wire format only; every operation is a call into
``remotesign.core``. Errors are TrustedX / OAuth style: ``{"error": code, "error_description": text}``."""

from fastapi import APIRouter

from remotesign.api.esigp import identities, processes, signatures

PREFIX = "/trustedx-resources"

router = APIRouter(prefix=PREFIX)
for _module in (identities, signatures, processes):
    router.include_router(_module.router)
