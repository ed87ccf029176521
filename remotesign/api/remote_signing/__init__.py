"""Remote Signing (VN)-style API facade (the EFY / SignCloud wire format) under ``/remote-signing``,
so a client configured with ``https://api.remotesigning.vn`` works with
``http(s)://<remotesign>/remote-signing``: the client login (JWT), agreements and their certificate
lifecycle, and hash signing authorized by the owner's passcode or a one-time code. Wire format
only; every operation is a call into ``remotesign.core``. Answers carry the spec's ``responseCode``
(api/remote_signing/answers.py), errors of any layer under the prefix too."""

from fastapi import APIRouter

from remotesign.api.errors import register_protocol_errors
from remotesign.api.openapi_doc import register_error_bodies
from remotesign.api.remote_signing import auth, certificates, files, signing
from remotesign.api.remote_signing.answers import ERROR_BODIES, RsTransportError, transport_error

PREFIX = "/remote-signing"

router = APIRouter(prefix=PREFIX)
for _module in (auth, certificates, signing, files):
    router.include_router(_module.router)

# size and nesting limits, unknown paths, unexpected failures: the API's own shapes
register_protocol_errors(PREFIX, transport_error)
register_error_bodies(PREFIX, RsTransportError, ERROR_BODIES)  # and /openapi.json says so
