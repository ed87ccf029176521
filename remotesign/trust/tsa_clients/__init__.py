"""Time-stamping authorities chosen per request (issue 14.3): the Fortress-style ``tsa`` object as
a :class:`TsaChoice`, turned into a pyHanko ``TimeStamper`` by :func:`make_timestamper` /
:class:`TsaClients`; TLS client certificates held by the service in :class:`TsaCredentialStore`;
the operator's allow-list of TSA hosts in :class:`TsaUrlPolicy`; every failure a :class:`TsaError`."""

from remotesign.trust.tsa_clients.choice import HASH_ALGORITHMS, TsaAuth, TsaChoice
from remotesign.trust.tsa_clients.client import (
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    HttpTsaClient,
    TsaClients,
    make_timestamper,
)
from remotesign.trust.tsa_clients.credentials import CredentialError, TsaCredential, TsaCredentialStore
from remotesign.trust.tsa_clients.errors import TSA_ERROR_STATUS, TsaError
from remotesign.trust.tsa_clients.policy import TsaUrlPolicy

__all__ = ["CredentialError", "DEFAULT_TIMEOUT", "HASH_ALGORITHMS", "HttpTsaClient", "MAX_RESPONSE_BYTES",
           "TSA_ERROR_STATUS", "TsaAuth", "TsaChoice", "TsaClients", "TsaCredential", "TsaCredentialStore",
           "TsaError", "TsaUrlPolicy", "make_timestamper"]
