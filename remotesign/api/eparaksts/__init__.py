"""eParaksts-compatible SignAPI facade (Session, Storage, Config, Signing): wire format only;
every operation is a call into ``remotesign.core``."""

from fastapi import APIRouter

from remotesign.api.eparaksts import config, session, signing, storage

router = APIRouter()
for _module in (session, storage, config, signing):
    router.include_router(_module.router)

PATH_PREFIXES = ("/api-session/", "/api-storage/", "/api-config/", "/api-sign/", "/api-signing/")
