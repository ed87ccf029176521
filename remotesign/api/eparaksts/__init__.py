"""eParaksts-compatible SignAPI facade (Session, Storage, Config, Signing, Validation, Share): wire format only;
every operation is a call into ``remotesign.core``."""

from fastapi import APIRouter

from remotesign.api.eparaksts import config, session, share, signing, storage, validation

router = APIRouter()
for _module in (session, storage, config, signing, validation, share):
    router.include_router(_module.router)

PATH_PREFIXES = ("/api-session/", "/api-storage/", "/api-config/", "/api-sign/", "/api-signing/",
                 "/api-validation/", "/api-share/")
