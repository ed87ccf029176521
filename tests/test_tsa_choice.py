"""Time-stamping authority chosen per request (issue 14.3): the Fortress ``tsa`` object as a
TsaChoice, turned into a pyHanko TimeStamper that reaches the service's own /pki/tsa through real
endpoints: directly (type URL), behind a proxy demanding HTTP Basic (USER), behind a TLS endpoint
demanding a client certificate (CERTIFICATE / CERTIFICATE_TLS) that the operator registered with
``remotesign tsa-credential add``. Every token is verified with ``openssl ts -verify`` against the
service's CA chain. Failures: wrong password, missing or foreign client certificate, unknown code,
closed port, silent server, garbage, a 10 MB answer, redirects, rejections, replays, and URLs the
operator's allow-list refuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import cms

from remotesign.trust.tsa_clients import (
    HttpTsaClient,
    TsaAuth,
    TsaChoice,
    TsaClients,
    TsaError,
    TsaUrlPolicy,
    make_timestamper,
)
from tests.harness import Service
from tests.tsa_endpoints import (
    FixedAnswer,
    HugeBodyServer,
    RawServer,
    TestCa,
    TsaProxy,
    closed_port,
    rejection_reply,
    server_tls,
)

LOOPBACK = TsaUrlPolicy.parse("loopback")
GENEROUS = 60.0  # a hung client fails the test instead of hanging it; no timing is asserted


# --- fixtures -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("tls-pki")
    ca = TestCa.create(base / "ca", "TSA TLS test CA")
    stranger = TestCa.create(base / "stranger", "Somebody else's CA")
    return {"ca": ca, "server": ca.issue("127.0.0.1", server=True), "client": ca.issue("tsa-client", client=True),
            "stranger_client": stranger.issue("stranger-client", client=True),
            "encrypted_client": ca.issue("locked-client", client=True, key_password=b"key pass"),
            "dir": base}


@pytest.fixture(scope="module")
def tsa_url(service: Service) -> str:
    return service.url + "/pki/tsa"


@pytest.fixture(scope="module")
def ca_file(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("svc-ca") / "ca.pem"
    path.write_bytes(httpx.get(service.url + "/pki/ca.pem", timeout=30).content)
    return path


@pytest.fixture(scope="module")
def services(service: Service) -> Iterator[Any]:
    """The service's own state opened in this process (same database and master key), as the
    Fortress API facade would hold it."""
    from remotesign.config import load_settings
    from remotesign.service import Services

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REMOTESIGN_HOME", str(service.home))
        mp.setenv("REMOTESIGN_PUBLIC_URL", service.url)
        mp.setenv("REMOTESIGN_TSA_ALLOWED_HOSTS", "loopback")
        svc = Services(load_settings())
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def clients(services: Any, pki: dict[str, Any]) -> TsaClients:
    built = TsaClients.for_services(services, tls_ca_file=pki["ca"].pem_file)
    assert built.policy == LOOPBACK  # REMOTESIGN_TSA_ALLOWED_HOSTS reached the policy
    return built


@pytest.fixture(scope="module")
def registered(service: Service, pki: dict[str, Any]) -> dict[str, str]:
    """Credentials registered through the CLI, as an operator would."""
    (pki["dir"] / "pw").write_text("open sesame\n")
    (pki["dir"] / "keypw").write_text("key pass\n")
    service.cli("tsa-credential", "add", "--code", "ours", "--cert", str(pki["client"].cert),
                "--key", str(pki["client"].key))
    service.cli("tsa-credential", "add", "--code", "theirs", "--cert", str(pki["stranger_client"].cert),
                "--key", str(pki["stranger_client"].key))
    service.cli("tsa-credential", "add", "--code", "locked", "--cert", str(pki["encrypted_client"].cert),
                "--key", str(pki["encrypted_client"].key), "--key-password-file", str(pki["dir"] / "keypw"),
                "--password-file", str(pki["dir"] / "pw"), "--chain", str(pki["ca"].pem_file))
    other = service.new_client("TSA credential owner")
    service.cli("tsa-credential", "add", "--code", "private", "--cert", str(pki["client"].cert),
                "--key", str(pki["client"].key), "--client", other["client_id"])
    return {"owner_client_id": other["client_id"]}


@pytest.fixture(scope="module")
def tls_proxy(tsa_url: str, pki: dict[str, Any]) -> Iterator[TsaProxy]:
    with TsaProxy(tsa_url, tls=server_tls(pki["server"], client_ca=pki["ca"])) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def basic_proxy(tsa_url: str) -> Iterator[TsaProxy]:
    with TsaProxy(tsa_url, basic=("alice", "s3cret")) as proxy:
        yield proxy


# --- helpers ------------------------------------------------------------------------------------------
def stamp(stamper: Any, data: bytes = b"document", algorithm: str = "sha256") -> tuple[cms.ContentInfo, bytes]:
    digest = hashlib.new(algorithm, data).digest()

    async def run() -> cms.ContentInfo:
        return await asyncio.wait_for(stamper.async_timestamp(digest, algorithm), GENEROUS)

    return asyncio.run(run()), digest


def failure(stamper: Any, data: bytes = b"document") -> TsaError:
    with pytest.raises(TsaError) as caught:
        stamp(stamper, data)
    return caught.value


def openssl_verify(token: cms.ContentInfo, digest: bytes, ca_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "token.der"
    path.write_bytes(token.dump())
    r = subprocess.run(["openssl", "ts", "-verify", "-in", str(path), "-token_in", "-digest", digest.hex(),
                        "-CAfile", str(ca_file)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Verification: OK" in r.stdout, r.stdout + r.stderr


def imprint_of(token: cms.ContentInfo) -> tuple[str, bytes]:
    imprint = token["content"]["encap_content_info"]["content"].parsed["message_imprint"]
    return imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native


def url_client(url: str, policy: TsaUrlPolicy = LOOPBACK, timeout: float = 10.0, **choice: Any) -> HttpTsaClient:
    stamper = make_timestamper(TsaChoice(url=url, **choice), default=None, policy=policy,  # type: ignore[arg-type]
                               timeout=timeout)
    assert isinstance(stamper, HttpTsaClient)
    return stamper


# --- the modes that work ------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA384", "SHA512"])
def test_type_url_direct_to_the_service_tsa(clients: TsaClients, tsa_url: str, ca_file: Path, tmp_path: Path,
                                           algorithm: str) -> None:
    choice = TsaChoice.from_fortress({"type": "URL", "url": tsa_url, "timestampAlgorithm": algorithm})
    assert choice.hash_algorithm == algorithm.lower() and choice.auth is TsaAuth.NONE
    token, digest = stamp(clients.timestamper(choice), algorithm=choice.hash_algorithm)
    assert imprint_of(token) == (choice.hash_algorithm, digest)
    openssl_verify(token, digest, ca_file, tmp_path)


def test_type_user_through_a_basic_auth_proxy(clients: TsaClients, basic_proxy: TsaProxy, ca_file: Path,
                                              tmp_path: Path) -> None:
    choice = TsaChoice.from_fortress({"type": "USER", "url": basic_proxy.url, "user": "alice", "password": "s3cret",
                                      "timestampAlgorithm": "SHA384"})
    token, digest = stamp(clients.timestamper(choice), b"basic", "sha384")
    assert imprint_of(token) == ("sha384", digest)
    openssl_verify(token, digest, ca_file, tmp_path)


@pytest.mark.parametrize("kind", ["CERTIFICATE_TLS", "CERTIFICATE"])
def test_client_certificate_through_a_tls_endpoint_that_demands_one(
        clients: TsaClients, registered: dict[str, str], tls_proxy: TsaProxy, ca_file: Path, tmp_path: Path,
        kind: str) -> None:
    before = len(tls_proxy.client_subjects)
    choice = TsaChoice.from_fortress({"type": kind, "url": tls_proxy.url, "certificateCode": "ours"})
    token, digest = stamp(clients.timestamper(choice, tenant_id=None), b"tls " + kind.encode())
    assert imprint_of(token) == ("sha256", digest)
    openssl_verify(token, digest, ca_file, tmp_path)
    assert "tsa-client" in tls_proxy.client_subjects[before]


def test_password_protected_credential_with_chain(clients: TsaClients, registered: dict[str, str],
                                                  tls_proxy: TsaProxy, ca_file: Path, tmp_path: Path) -> None:
    good = TsaChoice.from_fortress({"type": "CERTIFICATE", "url": tls_proxy.url, "certificateCode": "locked",
                                    "password": "open sesame"})
    token, digest = stamp(clients.timestamper(good))
    openssl_verify(token, digest, ca_file, tmp_path)
    for wrong in ("open sesame!", None):
        bad = TsaChoice.from_fortress({"type": "CERTIFICATE", "url": tls_proxy.url, "certificateCode": "locked",
                                       "password": wrong})
        assert failure(clients.timestamper(bad)).code == "tsa_credential_unknown"


def test_default_choice_is_the_service_default(clients: TsaClients) -> None:
    assert TsaChoice.from_fortress(None).is_default and TsaChoice.from_fortress({}).is_default
    assert clients.timestamper(TsaChoice.default()) is clients.default
    token, digest = stamp(clients.timestamper(TsaChoice.from_fortress({"timestampAlgorithm": "SHA512"})),
                          algorithm="sha512")
    assert imprint_of(token) == ("sha512", digest)


# --- refusals -----------------------------------------------------------------------------------------
def test_wrong_basic_password_is_refused(clients: TsaClients, basic_proxy: TsaProxy) -> None:
    wrong = TsaChoice.from_fortress({"type": "USER", "url": basic_proxy.url, "user": "alice", "password": "guess"})
    assert failure(clients.timestamper(wrong)).code == "tsa_refused"
    anonymous = TsaChoice.from_fortress({"type": "URL", "url": basic_proxy.url})
    error = failure(clients.timestamper(anonymous))
    assert error.code == "tsa_refused" and "401" in error.message and error.status == 502


def test_missing_or_foreign_client_certificate_is_refused(clients: TsaClients, registered: dict[str, str],
                                                          tls_proxy: TsaProxy) -> None:
    served = tls_proxy.requests
    no_cert = TsaChoice.from_fortress({"type": "URL", "url": tls_proxy.url})
    assert failure(clients.timestamper(no_cert)).code == "tsa_refused"
    foreign = TsaChoice.from_fortress({"type": "CERTIFICATE_TLS", "url": tls_proxy.url, "certificateCode": "theirs"})
    assert failure(clients.timestamper(foreign)).code == "tsa_refused"
    assert tls_proxy.requests == served  # neither got past the TLS handshake


def test_unknown_or_someone_elses_certificate_code(clients: TsaClients, registered: dict[str, str],
                                                   services: Any, tls_proxy: TsaProxy) -> None:
    unknown = TsaChoice.from_fortress({"type": "CERTIFICATE_TLS", "url": tls_proxy.url, "certificateCode": "nope"})
    error = failure(clients.timestamper(unknown))
    assert error.code == "tsa_credential_unknown" and error.status == 400
    private = TsaChoice.from_fortress({"type": "CERTIFICATE_TLS", "url": tls_proxy.url, "certificateCode": "private"})
    demo_tenant = services.tenants.by_client_id(json.loads((Path(services.settings.home) / "demo-client.json")
                                                           .read_text())["client_id"])
    assert failure(clients.timestamper(private, tenant_id=demo_tenant.id)).code == "tsa_credential_unknown"
    owner = services.tenants.by_client_id(registered["owner_client_id"])
    token, _ = stamp(clients.timestamper(private, tenant_id=owner.id))
    assert token["content_type"].native == "signed_data"
    # prepare() refuses up front, before a caller touches any document
    with pytest.raises(TsaError) as caught:
        asyncio.run(clients.timestamper(unknown).prepare())  # type: ignore[attr-defined]
    assert caught.value.code == "tsa_credential_unknown"


def test_tsa_down_is_unreachable() -> None:
    error = failure(url_client(f"http://127.0.0.1:{closed_port()}/tsa"))
    assert error.code == "tsa_unreachable"


def test_silent_tsa_times_out_as_unreachable() -> None:
    with RawServer(None) as silent:
        error = failure(url_client(silent.url, timeout=2.0))
    assert error.code == "tsa_unreachable" and "within 2 s" in error.message


@pytest.mark.parametrize("answer", ["random-bytes", "html", "not-http", "redirect", "server-error", "truncated-der"])
def test_garbage_answers_are_bad_responses(answer: str, tsa_url: str) -> None:
    if answer == "not-http":
        with RawServer(b"SSH-2.0-OpenSSH_9.2\r\n" * 50) as raw:
            assert failure(url_client(raw.url)).code == "tsa_bad_response"
        return
    status, headers, body = {
        "random-bytes": (200, {"Content-Type": "application/timestamp-reply"}, bytes(range(256)) * 8),
        "html": (200, {"Content-Type": "text/html"}, b"<html>hello</html>"),
        "redirect": (302, {"Location": tsa_url}, b""),
        "server-error": (500, {"Content-Type": "text/plain"}, b"oops"),
        "truncated-der": (200, {"Content-Type": "application/timestamp-reply"}, b"\x30\x82\x10\x00\x30\x03"),
    }[answer]
    with FixedAnswer(status, headers, body) as server:
        assert failure(url_client(server.url)).code == "tsa_bad_response"
        assert server.requests == 1  # a redirect is not followed


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_ten_megabyte_answer_is_refused_without_reading_it(declared: bool) -> None:
    size = 10 << 20
    with HugeBodyServer(size, declared=declared) as big:
        error = failure(url_client(big.url))
        sent = big.bytes_sent
    assert error.code == "tsa_bad_response" and "larger than" in error.message
    assert sent < size, f"the client read the whole {size} bytes"


def test_pki_status_rejection_is_refused() -> None:
    with FixedAnswer(200, {"Content-Type": "application/timestamp-reply"}, rejection_reply()) as server:
        error = failure(url_client(server.url))
    assert error.code == "tsa_refused" and "rejection" in error.message and "bad_alg" in error.message


@pytest.mark.parametrize("mode", ["imprint", "replay"])
def test_wrong_imprint_or_stale_nonce_is_a_bad_response(mode: str, tsa_url: str) -> None:
    with TsaProxy(tsa_url, mode=mode) as proxy:
        stamper = url_client(proxy.url)
        if mode == "replay":
            stamp(stamper, b"first")  # the first reply is genuine
        error = failure(stamper, b"second")
    assert error.code == "tsa_bad_response"
    assert ("imprint" if mode == "imprint" else "nonce") in error.message


@pytest.mark.parametrize("url, policy", [
    ("http://127.0.0.1:9/tsa", "public"),            # loopback is not public
    ("http://localhost:9/tsa", "public"),            # nor a name resolving to it
    ("http://10.1.2.3/tsa", "public,loopback"),      # private range
    ("http://169.254.169.254/latest", "public"),     # link-local (cloud metadata)
    ("http://[::ffff:127.0.0.1]:9/tsa", "public"),   # IPv4-mapped loopback
    ("http://127.0.0.1:9/tsa", "none"),              # per-request TSAs switched off
    ("http://127.0.0.1:9/tsa", "10.0.0.0/8,tsa.example.com"),
    ("ftp://127.0.0.1/tsa", "loopback"),             # only http and https
    ("file:///etc/passwd", "loopback"),
    ("http://user:pw@127.0.0.1:9/tsa", "loopback"),  # credentials go in user/password
])
def test_disallowed_urls(url: str, policy: str) -> None:
    with FixedAnswer(200, {}, b"") as never_reached:
        with pytest.raises(TsaError) as caught:
            stamp(make_timestamper(TsaChoice(url=url), default=None,  # type: ignore[arg-type]
                                   policy=TsaUrlPolicy.parse(policy)))
        assert never_reached.requests == 0
    assert caught.value.code == "tsa_not_allowed" and caught.value.status == 400


def test_allow_list_entries() -> None:
    import ipaddress

    default = TsaUrlPolicy.parse(None)
    assert default.public and default.address_allowed(ipaddress.ip_address("193.0.0.1"))
    assert not default.address_allowed(ipaddress.ip_address("127.0.0.1"))
    assert not default.address_allowed(ipaddress.ip_address("192.168.1.1"))
    assert not default.address_allowed(ipaddress.ip_address("fe80::1"))
    mixed = TsaUrlPolicy.parse("loopback, 192.168.5.0/24, tsa.corp.example, *.tsa.example")
    assert not mixed.public
    assert mixed.address_allowed(ipaddress.ip_address("::1"))
    assert mixed.address_allowed(ipaddress.ip_address("192.168.5.7"))
    assert not mixed.address_allowed(ipaddress.ip_address("192.168.6.7"))
    assert mixed.name_allowed("TSA.corp.example.") and mixed.name_allowed("a.tsa.example")
    assert not mixed.name_allowed("tsa.example") and not mixed.name_allowed("eviltsa.corp.example")
    assert not TsaUrlPolicy.parse("none").allows_anything
    with pytest.raises(ValueError):
        TsaUrlPolicy.parse("http://x/")


def test_fortress_objects_that_are_refused() -> None:
    for obj, code in [
        ({"type": "FTP", "url": "http://127.0.0.1/"}, "tsa_invalid_choice"),
        ({"type": "USER", "url": "http://127.0.0.1/"}, "tsa_invalid_choice"),
        ({"type": "CERTIFICATE", "url": "http://127.0.0.1/"}, "tsa_invalid_choice"),
        ({"type": "URL"}, "tsa_invalid_choice"),
        ({"type": "URL", "url": "http://127.0.0.1/", "timestampAlgorithm": "MD5"}, "tsa_invalid_choice"),
        ({"type": "URL", "url": 7}, "tsa_invalid_choice"),
        ({"type": "URL", "url": "gopher://127.0.0.1/"}, "tsa_not_allowed"),
        ({"type": "URL", "url": "http:///nohost"}, "tsa_not_allowed"),
    ]:
        with pytest.raises(TsaError) as caught:
            TsaChoice.from_fortress(obj)  # type: ignore[arg-type]
        assert caught.value.code == code, obj
    parsed = TsaChoice.from_fortress({"url": "https://tsa.example/x", "timestampAlgorithm": "sha-384"})
    assert parsed.auth is TsaAuth.NONE and parsed.hash_algorithm == "sha384"
    assert "hunter2" not in repr(TsaChoice.from_fortress({"type": "USER", "url": "https://t.example/", "user": "u",
                                                         "password": "hunter2"}))


# --- the operator's side ------------------------------------------------------------------------------
def test_cli_list_remove_and_key_sealed(service: Service, registered: dict[str, str], clients: TsaClients,
                                        tls_proxy: TsaProxy, pki: dict[str, Any], tmp_path: Path) -> None:
    listed = {c["code"]: c for c in json.loads(service.cli("tsa-credential", "list", "--json").stdout)}
    assert {"ours", "theirs", "locked", "private"} <= set(listed)
    assert listed["locked"]["password"] and listed["locked"]["chain"] == 1
    assert listed["private"]["client"] == registered["owner_client_id"] and listed["ours"]["client"] is None
    assert listed["ours"]["key_backend"] == "software" and "CN=tsa-client" in listed["ours"]["subject"]
    # The key is sealed under the master key: its clear bytes are nowhere in the database.
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki["client"].key.read_bytes(), None)
    clear = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    db = sqlite3.connect(service.home / "remotesign.db")
    try:
        handle, usage = db.execute("SELECT k.handle, k.usage FROM keys k JOIN tsa_credentials t ON t.key_id = k.id "
                                   "WHERE t.code = 'ours'").fetchone()
    finally:
        db.close()
    assert usage == "tls-client" and handle.startswith(b"RSK1")
    assert clear not in (service.home / "remotesign.db").read_bytes()
    # A tls-client key never signs through the key store.
    from remotesign.keystore.base import KeyStoreError

    with pytest.raises(KeyStoreError):
        store = clients.credentials
        store.keystore.sign_digest(store.stored_key(_key_id(service, "ours")), bytes(32), "sha256")
    # Remove: gone from the list, the key destroyed, and a request naming it is refused.
    service.cli("tsa-credential", "add", "--code", "temporary", "--cert", str(pki["client"].cert),
                "--key", str(pki["client"].key))
    choice = TsaChoice.from_fortress({"type": "CERTIFICATE_TLS", "url": tls_proxy.url,
                                      "certificateCode": "temporary"})
    stamp(clients.timestamper(choice))
    key_id = _key_id(service, "temporary")
    assert "removed" in service.cli("tsa-credential", "remove", "temporary").stdout.decode()
    assert failure(clients.timestamper(choice)).code == "tsa_credential_unknown"
    assert service.cli("tsa-credential", "remove", "temporary", check=False).returncode == 2
    db = sqlite3.connect(service.home / "remotesign.db")
    try:
        assert db.execute("SELECT handle FROM keys WHERE id = ?", (key_id,)).fetchone()[0] == b""
    finally:
        db.close()


def _key_id(service: Service, code: str) -> str:
    db = sqlite3.connect(service.home / "remotesign.db")
    try:
        return str(db.execute("SELECT key_id FROM tsa_credentials WHERE code = ?", (code,)).fetchone()[0])
    finally:
        db.close()


def test_cli_refuses_bad_registrations(service: Service, registered: dict[str, str], pki: dict[str, Any]) -> None:
    cases = [
        (["--code", "mismatch", "--cert", str(pki["client"].cert), "--key", str(pki["stranger_client"].key)],
         "does not belong"),
        (["--code", "bad code!", "--cert", str(pki["client"].cert), "--key", str(pki["client"].key)], "code"),
        (["--code", "ours", "--cert", str(pki["client"].cert), "--key", str(pki["client"].key)], "exists"),
        (["--code", "server-only", "--cert", str(pki["server"].cert), "--key", str(pki["server"].key)],
         "client authentication"),
        (["--code", "nopass", "--cert", str(pki["encrypted_client"].cert), "--key", str(pki["encrypted_client"].key)],
         "cannot be read"),
        (["--code", "nokey", "--cert", str(pki["client"].cert), "--key", str(pki["client"].cert)], "cannot be read"),
    ]
    for args, message in cases:
        r = service.cli("tsa-credential", "add", *args, check=False)
        assert r.returncode == 2 and message in r.stderr.decode(), (args, r.stderr)


def test_hsm_key_backend_refuses_tls_client_keys(tmp_path: Path, pki: dict[str, Any]) -> None:
    from tests.harness import SOFTHSM_MODULE, cli, make_softhsm_token

    if not Path(SOFTHSM_MODULE).exists():
        pytest.skip("SoftHSM2 is not installed")
    env = make_softhsm_token(tmp_path / "hsm")
    cli(tmp_path / "home", "init", env=env)  # only init and serve create an instance
    r = cli(tmp_path / "home", "tsa-credential", "add", "--code", "hsm", "--cert", str(pki["client"].cert),
            "--key", str(pki["client"].key), env=env, check=False)
    assert r.returncode == 2 and "HSM" in r.stderr.decode() and "software" in r.stderr.decode()


def test_credential_whose_key_is_in_another_backend_is_unusable(services: Any, registered: dict[str, str],
                                                                tls_proxy: TsaProxy, pki: dict[str, Any]) -> None:
    """A credential whose key record says pkcs11 (the backend was switched) is refused clearly."""
    from remotesign.storage.models import KeyRecord
    from remotesign.trust.tsa_clients import TsaCredentialStore

    store = TsaCredentialStore(services.db, services.keystore, kdf_log2_n=14, tls_ca_file=pki["ca"].pem_file)
    store.add("moved", pki["client"].cert_pem, pki["client"].key.read_bytes())
    with services.db.session() as s:
        rec = s.get(KeyRecord, _key_id_in(services, "moved"))
        rec.backend = "pkcs11"
    stamper = make_timestamper(TsaChoice(url=tls_proxy.url, auth=TsaAuth.CLIENT_CERTIFICATE,
                                         certificate_code="moved"),
                               default=None, policy=LOOPBACK, credentials=store)  # type: ignore[arg-type]
    error = failure(stamper)
    assert error.code == "tsa_credential_unusable" and "pkcs11" in error.message


def _key_id_in(services: Any, code: str) -> str:
    from remotesign.storage.models import TsaCredential

    with services.db.session() as s:
        return str(s.get(TsaCredential, code).key_id)
