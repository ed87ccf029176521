"""Key storage: private keys are created and used here and never leave it.

``KeyStore`` is the service the rest of the code uses; it keeps the key records in the database
and delegates the private-key operations to one ``KeyBackend`` (software or PKCS#11).
"""

from remotesign.keystore.base import EncryptionPadding, KeyAlgorithm, KeyBackend, KeyStoreError, SignatureScheme
from remotesign.keystore.store import KeyStore, StoredKey
from remotesign.keystore.usage import AuthorizationRefused, KeyUsage, KeyUseAuthorization

__all__ = ["EncryptionPadding", "AuthorizationRefused", "KeyAlgorithm", "KeyBackend", "KeyStore", "KeyStoreError", "KeyUsage",
           "KeyUseAuthorization", "SignatureScheme", "StoredKey"]
