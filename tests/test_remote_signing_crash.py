"""A Remote Signing transaction whose signature dies with its process (SIGKILL right after the key
signed, as a power cut would) never signs twice and is never stuck: after the restart the same
billCode and code are refused with 1015 (the signature was made but never answered, so the relying
party starts a new transaction), the key was used exactly once for it, and the agreement signs and
renews as before."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.crash_tools import database, restart_with
from tests.harness import Service, free_port
from tests.mailbox import mailbox
from tests.test_remote_signing import DIGITS, Rs, fresh, relogin


@pytest.fixture()
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("remote-signing-crash"), port=free_port()).start()
    yield service
    service.stop()


def key_uses(service: Service, reference: str) -> int:
    with database(service.home) as db:
        identity = db.execute("SELECT sign_identity_id FROM agreements WHERE reference = ?", (reference,)).fetchone()[0]
        return int(db.execute("SELECT count(*) FROM audit_events WHERE event = 'identity_key.used' AND subject = ?",
                              (identity,)).fetchone()[0])


def test_a_crash_after_the_key_signed_never_signs_twice(svc: Service) -> None:
    party = Rs(svc, "Crash Bank")
    owner = "crash-owner"
    agreement, passcode = fresh(party, owner=owner, ownerEmail=f"{owner}@example.test")
    digest = hashlib.sha256(b"crash").digest()
    answer = party.sign(agreement, [digest], mode="EXPLICIT/OTP-EMAIL")
    assert answer["responseCode"] == 1007, answer
    text = mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()
    code = DIGITS.search(text).group(1)  # type: ignore[union-attr]
    assert re.search(answer["billCode"], text)
    uses = key_uses(svc, agreement)

    restart_with(svc, "signing_transaction.signed")
    body = {"agreementUUID": agreement, "billCode": answer["billCode"], "authorizeCode": code}
    with pytest.raises(httpx.TransportError):
        relogin(party).http.post("/signing/hash/authorize", json=body)
    assert key_uses(svc, agreement) == uses + 1

    restart_with(svc, None)
    again = relogin(party).call("/signing/hash/authorize", body)
    assert again["responseCode"] == 1015, again
    assert key_uses(svc, agreement) == uses + 1
    with database(svc.home) as db:
        assert db.execute("SELECT status FROM signing_transactions WHERE id = ?",
                          (answer["billCode"],)).fetchone()[0] == "failed"
    # nothing is left waiting: the agreement signs, and its certificate can be renewed at once
    assert party.sign(agreement, [digest], code=passcode)["responseCode"] == 0
    renewed = party.call("/certificates/renew", {"agreementUUID": agreement, "certificateProfile": "T2PSB21Y"})
    assert renewed["responseCode"] == 1007, renewed


def test_a_crash_during_a_passcode_signature_leaves_nothing_stuck(svc: Service) -> None:
    party = Rs(svc, "Crash Bank")
    agreement, passcode = fresh(party)
    restart_with(svc, "signing_transaction.signed")
    with pytest.raises(httpx.TransportError):
        relogin(party).sign(agreement, [hashlib.sha256(b"p").digest()], code=passcode)
    restart_with(svc, None)
    renewed = relogin(party).call("/certificates/renew", {"agreementUUID": agreement, "certificateProfile": "T2PSB21Y"})
    assert renewed["responseCode"] == 1007, renewed
    assert party.sign(agreement, [hashlib.sha256(b"p").digest()], code=passcode)["responseCode"] == 0


def test_a_billcode_being_signed_is_1016(svc: Service) -> None:
    svc.stop()
    svc.env["REMOTESIGN_PAUSE_AT"] = "signing_transaction.claimed"
    svc.start()
    party = Rs(svc, "Race Bank")
    owner = "race-owner"
    agreement, _ = fresh(party, owner=owner, ownerEmail=f"{owner}@example.test")
    answer = party.sign(agreement, [hashlib.sha256(b"held").digest()], mode="EXPLICIT/OTP-EMAIL")
    text = mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()
    body = {"agreementUUID": agreement, "billCode": answer["billCode"],
            "authorizeCode": DIGITS.search(text).group(1)}  # type: ignore[union-attr]
    first: list[dict[str, object]] = []
    holder = threading.Thread(target=lambda: first.append(party.call("/signing/hash/authorize", body)))
    holder.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first call has claimed the bill and is held before signing
        with database(svc.home) as db:
            if db.execute("SELECT status FROM signing_transactions WHERE id = ?",
                          (answer["billCode"],)).fetchone()[0] == "signing":
                break
        time.sleep(0.05)
    second = party.call("/signing/hash/authorize", body)
    assert second["responseCode"] == 1016 and second["responseMessage"] == "FILE IS BEING PROCESSED", second
    (svc.home / "resume-signing_transaction.claimed").touch()
    holder.join(60)
    assert first and first[0]["responseCode"] == 0, first
    assert party.call("/signing/hash/authorize", body)["responseCode"] == 1004  # and then it is used
