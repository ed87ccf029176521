"""Choose the key backend named by the settings."""

from __future__ import annotations

from remotesign.config import Settings
from remotesign.keystore.base import KeyBackend, KeyStoreError
from remotesign.keystore.software import SoftwareKeyBackend, load_or_create_master_key


def make_backend(settings: Settings) -> KeyBackend:
    if settings.key_backend == "software":
        return SoftwareKeyBackend(load_or_create_master_key(settings.master_key_file, settings.master_key_b64))
    if settings.key_backend == "pkcs11":
        from remotesign.keystore.pkcs11 import Pkcs11KeyBackend

        p11 = settings.pkcs11
        if not p11.user_pin:
            raise KeyStoreError("REMOTESIGN_PKCS11_PIN (or REMOTESIGN_PKCS11_PIN_FILE) is required for the pkcs11 backend")
        return Pkcs11KeyBackend(p11.module, p11.token_label, p11.user_pin, p11.pool_size)
    raise KeyStoreError(f"unknown key backend {settings.key_backend!r} (software or pkcs11)")
