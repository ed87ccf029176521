"""Cloud Signature Consortium API facade, v1.0.4.0 under ``/csc/v1`` and v2.0.0.2 under ``/csc/v2``,
so that pyHanko's ``CSCSigner`` (base URL and token) and v2 clients work against this service.
Credentials are the users' sign identities; authorization is the core's consent pages, explicit
factors and signature activation data (core/signature_activation.py); signatures go through the
core's sole control. Wire format only; errors are ``{"error", "error_description"}``."""

from fastapi import APIRouter

from remotesign.api.csc import credentials, info, oauth2, session, signatures
from remotesign.service import Services

PREFIX = "/csc"

def install(services: Services) -> None:
    """What the CSC facade adds to the core at start-up: the runners of its asynchronous calls."""
    signatures.install(services)


router = APIRouter()
for _module in (info, oauth2, session, credentials, signatures):
    router.include_router(_module.router)
