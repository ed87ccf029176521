"""Operator CLI for sign identities, devices and redirect URIs (the users' half is
tests/test_cli_users.py, whose helpers this module shares; two modules so two workers share the
work), run as subprocesses against the running service's home."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from remotesign.keystore import KeyStoreError
from remotesign.storage.models import KeyRecord
from tests.harness import Service
from tests.cli_tools import fails, in_process, name, ok, openssl_verify, run

pytestmark = pytest.mark.slow


# -- identities -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("algorithm", "key_type", "size"), [("rsa-2048", rsa.RSAPublicKey, 2048),
                                                             ("rsa-3072", rsa.RSAPublicKey, 3072),
                                                             ("ec-p256", ec.EllipticCurvePublicKey, 256),
                                                             ("ec-p384", ec.EllipticCurvePublicKey, 384)])
def test_identity_from_the_builtin_ca(service: Service, ca_dir: Path, algorithm: str, key_type: type,
                                      size: int) -> None:
    username = name()
    ok(service, "users", "add", username, "--name", "Jānis Kalniņš", "--serial-number", "PNOLV-020202-22222")
    identity = json.loads(ok(service, "identities", "create", username, "--algorithm", algorithm,
                             "--label", "serverid", "--label", "test-label", "--description", "cli test",
                             "--pin-stdin", "--json", input="2468\n"))
    assert identity["id"] and identity["labels"] == ["serverid", "test-label"]
    assert identity["description"] == "cli test" and identity["status"] == {"value": "enabled"}
    assert identity["details"]["activation_mode"] == "pin"
    assert identity["user"]["username"] == username

    shown = ok(service, "identities", "show", identity["id"], "--pem")
    assert json.loads(shown[:shown.index("-----BEGIN")])["id"] == identity["id"]
    certs = x509.load_pem_x509_certificates(shown[shown.index("-----BEGIN"):].encode())
    cert = certs[0]
    assert cert.public_bytes(serialization.Encoding.DER) == \
        base64.b64decode(identity["details"]["certificate"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Jānis Kalniņš"
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "PNOLV-020202-22222"
    key = cert.public_key()
    assert isinstance(key, key_type) and key.key_size == size
    verdict = openssl_verify(ca_dir, cert.public_bytes(serialization.Encoding.PEM))
    assert verdict.returncode == 0 and ": OK" in verdict.stdout, verdict.stdout + verdict.stderr
    assert len(certs) == 3  # leaf + issuing + root

    if algorithm != "ec-p256":  # the rest once
        ok(service, "users", "delete", username)
        return
    # the PIN given on stdin is the signing PIN
    with in_process(service) as svc:
        svc.identities.verify_pin(identity["id"], "2468", actor="test", tenant_id=None)

    listed = json.loads(ok(service, "identities", "list", username, "--json"))
    assert [i["id"] for i in listed] == [identity["id"]]
    assert identity["id"] in ok(service, "identities", "list", "--label", "test-label")
    assert identity["id"] not in ok(service, "identities", "list", "--label", "test-label", "--label", "absent")
    user = json.loads(ok(service, "users", "show", username))
    assert [i["id"] for i in user["identities"]] == [identity["id"]]
    assert user["identities"][0]["subject_cn"] == "Jānis Kalniņš"
    ok(service, "users", "delete", username)


def test_identity_administration(service: Service) -> None:
    from remotesign.core.identities import PinRefused

    username = name()
    ok(service, "users", "add", username, "--name", "Pin Tester", "--serial-number", "PNOLV-030303-33333")
    proc = run(service, "identities", "create", username, "--no-pin", "--json")  # defaults: RSA-2048
    assert proc.returncode == 0 and b"warning: sign identity" in proc.stderr and b"no signing PIN" in proc.stderr
    identity = json.loads(proc.stdout)
    assert identity["details"]["activation_mode"] == "none"
    assert identity["labels"] == ["serverid", "x509:keyUsage:contentCommitment"]
    iid = identity["id"]

    out = ok(service, "identities", "disable", iid, "--reason", "lost phone")
    assert "disabled" in out
    shown = json.loads(ok(service, "identities", "show", iid))
    assert shown["status"] == {"value": "disabled", "reason": "lost phone"}
    ok(service, "identities", "enable", iid)
    assert json.loads(ok(service, "identities", "show", iid))["status"] == {"value": "enabled"}

    ok(service, "identities", "set-pin", iid, "--pin-stdin", input="1357\n")
    with in_process(service) as svc:
        for _ in range(svc.identities.pin_max_attempts):
            with pytest.raises(PinRefused):
                svc.identities.verify_pin(iid, "0000", actor="test", tenant_id=None)
        with pytest.raises(PinRefused) as refused:
            svc.identities.verify_pin(iid, "1357", actor="test", tenant_id=None)
        assert refused.value.code == "pin_locked"
    assert json.loads(ok(service, "identities", "show", iid))["pin_locked_until"] is not None

    ok(service, "identities", "set-pin", iid, "--pin-stdin", input="97531\n")  # lifts the lock
    shown = json.loads(ok(service, "identities", "show", iid))
    assert shown["pin_locked_until"] is None and shown["pin_failures"] == 0
    assert shown["details"]["activation_mode"] == "pin"
    with in_process(service) as svc:
        svc.identities.verify_pin(iid, "97531", actor="test", tenant_id=None)

    assert "invalid" not in fails(service, "identities", "set-pin", iid, "--pin-stdin", input="12\n")
    fails(service, "identities", "set-pin", iid, status=2)  # the PIN source is required
    fails(service, "identities", "create", username, "--pin-stdin", input="1\n")
    fails(service, "identities", "create", username, "--algorithm", "dsa-1024", status=2)
    fails(service, "identities", "create", "nobody-" + name(), "--no-pin")
    assert "--no-pin" in fails(service, "identities", "create", username, status=2)  # no PIN source, no terminal

    ok(service, "identities", "delete", iid)
    for args in (("show", iid), ("disable", iid), ("enable", iid), ("delete", iid)):
        assert "no sign identity" in fails(service, "identities", *args)
    # What is left is the authentication identity the first signing identity came with.
    left = json.loads(ok(service, "identities", "list", username, "--json"))
    assert [i["description"] for i in left] == ["eparaksts:mobileid:auth"]
    ok(service, "users", "delete", username)


def _self_signed_p12(tmp_path: Path, password: bytes | None) -> tuple[Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imported Person"),
                         x509.NameAttribute(NameOID.COUNTRY_NAME, "LV")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    path = tmp_path / f"id-{uuid.uuid4().hex[:6]}.p12"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"imported", key, cert, None, encryption))
    return path, cert


def test_identity_import_pkcs12(service: Service, tmp_path: Path) -> None:
    username = name()
    ok(service, "users", "add", username, "--name", "Import Tester")
    p12, cert = _self_signed_p12(tmp_path, b"p12-password")
    pin_file = tmp_path / "pin"
    pin_file.write_text("8642\n")

    identity = json.loads(ok(service, "identities", "import", username, str(p12), "--password-stdin",
                             "--pin-file", str(pin_file), "--label", "imported", "--json", input="p12-password\n"))
    der = cert.public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(identity["details"]["certificate"]) == der
    assert identity["labels"] == ["imported"] and identity["details"]["activation_mode"] == "pin"
    assert identity["details"]["subject"] == "C=LV,CN=Imported Person"
    with in_process(service) as svc:
        svc.identities.verify_pin(identity["id"], "8642", actor="test", tenant_id=None)
        # the key moved into the key store signs, and the certificate's public key verifies it
        from remotesign.core.identities import Viewer

        info = svc.identities.get(identity["id"], Viewer(None))
        digest = hashes.Hash(hashes.SHA256())
        digest.update(b"hello")
        value = digest.finalize()
        key = svc.keystore.identity_key(info.key_id, None)
        # an identity key is no operator key, and signs only under a named SCAL2 authorization
        with pytest.raises(KeyStoreError):
            svc.keystore.get(info.key_id, None)
        with pytest.raises(KeyStoreError):
            svc.keystore.sign_digest(key, value, "sha256")
        with svc.db.session() as s:
            record = s.get(KeyRecord, info.key_id)
            assert record is not None and record.usage == "identity"
            handle = record.handle
        signature = svc.keystore.backend.sign_digest(handle, key.algorithm, value, "sha256", key.default_scheme)
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signature, b"hello", ec.ECDSA(hashes.SHA256()))

    # a PKCS#12 without a password, the PIN on stdin
    plain, _ = _self_signed_p12(tmp_path, None)
    summary = ok(service, "identities", "import", username, str(plain), "--pin-stdin", input="1111\n")
    second = {"id": summary.split()[2]}  # "sign identity: ID"
    assert "PIN:           set" in summary and "CN=Imported Person" in summary
    assert {i["id"] for i in json.loads(ok(service, "identities", "list", username, "--json"))} == \
        {identity["id"], second["id"]}

    # wrong password, unreadable file, both secrets on stdin, not a PKCS#12
    assert "PKCS#12" in fails(service, "identities", "import", username, str(p12), "--password-stdin", "--no-pin",
                              input="wrong\n")
    fails(service, "identities", "import", username, str(tmp_path / "missing.p12"), "--no-pin")
    fails(service, "identities", "import", username, str(p12), "--password-stdin", "--pin-stdin",
          input="p12-password\n", status=2)
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"not a pkcs12")
    fails(service, "identities", "import", username, str(junk), "--no-pin")
    ok(service, "users", "delete", username)


# -- devices ----------------------------------------------------------------------------------------
def test_devices(service: Service) -> None:
    username = name()
    ok(service, "users", "add", username, "--name", "Device Owner")
    device_key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with in_process(service) as svc:
        device, _token = svc.devices.register(svc.users.find(username), device_key, "phone")
    listed = json.loads(ok(service, "devices", "list", username, "--json"))
    assert [(d["id"], d["name"], d["status"]) for d in listed] == [(device.id, "phone", "enabled")]
    assert device.id in ok(service, "devices", "list", username)
    assert json.loads(ok(service, "users", "show", username))["devices"][0]["id"] == device.id
    fails(service, "devices", "remove", username, str(uuid.uuid4()))
    assert "removed" in ok(service, "devices", "remove", username, device.id)
    assert json.loads(ok(service, "devices", "list", username, "--json")) == []
    fails(service, "devices", "list", "nobody-" + name())
    ok(service, "users", "delete", username)


# -- redirect URIs ----------------------------------------------------------------------------------
def test_client_redirect_uris(service: Service) -> None:
    client_id = service.new_client("cli redirect client")["client_id"]
    out = json.loads(ok(service, "client", "redirect-uris", client_id, "http://127.0.0.1:9999/cb",
                        "https://rp.example.com/callback"))
    assert out == {"client_id": client_id,
                   "redirect_uris": ["http://127.0.0.1:9999/cb", "https://rp.example.com/callback"]}
    assert "plain http" in fails(service, "client", "redirect-uris", client_id, "http://example.com/cb")
    fails(service, "client", "redirect-uris", client_id, "https://rp.example.com/cb#frag")
    fails(service, "client", "redirect-uris", client_id, "not a uri")
    # a refused list changes nothing
    assert json.loads(ok(service, "client", "redirect-uris", client_id))["redirect_uris"] == \
        ["http://127.0.0.1:9999/cb", "https://rp.example.com/callback"]
    assert json.loads(ok(service, "client", "redirect-uris", client_id, "--clear"))["redirect_uris"] == []
    assert "no client" in fails(service, "client", "redirect-uris", "no-such-client", "https://x.example/cb")
    fails(service, "client", "redirect-uris", client_id, "https://x.example/cb", "--clear", status=2)


