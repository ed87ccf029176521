"""A batch announces its end by webhook (core/callbacks.py, the schedule the Fortress-style
asynchronous requests use too): one POST to the ``callback_url`` given at submission, signed with
the client's callback key, retried while the receiver fails, its state visible on the batch."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import Card, issue_card, sign_bb
from tests.test_batches import client, submit, wait_finished
from tests.test_fortress_async import Receiver, verify_signature


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("batch-callbacks") / "home", port=free_port(),
                      env={"REMOTESIGN_CALLBACK_ALLOWED_HOSTS": "loopback", "REMOTESIGN_CALLBACK_BACKOFF": "0.2",
                           "REMOTESIGN_CALLBACK_MAX_ATTEMPTS": "3"}).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def http(svc: Service) -> Iterator[httpx.Client]:
    with client(svc) as c:
        yield c


@pytest.fixture(scope="module")
def card(svc: Service, tmp_path_factory: pytest.TempPathFactory) -> Card:
    return issue_card(svc, tmp_path_factory.mktemp("batch-callback-card"), "p256", cn="Batch Callback Signer")


def wait_callback(http: httpx.Client, batch_id: str, status: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = http.get(f"/v1/batches/{batch_id}").json()
        if body["callback_status"] == status:
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_a_finished_batch_is_announced_once_signed_after_a_failed_attempt(http: httpx.Client, card: Card) -> None:
    receiver = Receiver(failures=1).start()
    try:
        docs = [(f"invoice-{n}.pdf", sign_bb(card, source=pdf_bytes(text=f"invoice {n}"))) for n in range(2)]
        batch = submit(http, "validations", docs + [("plain.pdf", pdf_bytes(text="unsigned"))],
                       callback_url=receiver.url)
        assert batch["callback_url"] == receiver.url and batch["callback_status"] == "none", batch
        done = wait_finished(http, batch["id"])
        [(headers, body)] = receiver.wait(1)
        assert receiver.attempts == 2  # the first was answered 503 and retried
        key = base64.b64decode(http.get("/v1/client/callback-secret").json()["callback_secret"])
        sent = verify_signature(headers, body, key)
        assert headers["x-remotesign-event"] == "batch"
        assert sent["event"] == "batch.finished" and sent["batch"]["id"] == batch["id"], sent
        assert sent["batch"]["status"] == "finished" and sent["batch"]["items"] == done["items"], sent
        assert sent["batch"]["items"]["done"] == 2 and sent["batch"]["items"]["failed"] == 1, sent
        with pytest.raises(AssertionError):  # a forged body does not verify under the key
            verify_signature(headers, body.replace(b'"done":2', b'"done":3'), key)
        assert wait_callback(http, batch["id"], "delivered")["callback_url"] == receiver.url
        time.sleep(1.0)
        assert receiver.attempts == 2 and len(receiver.received) == 1  # delivered once, never again
    finally:
        receiver.stop()


def test_without_a_callback_url_nothing_is_sent(http: httpx.Client, card: Card) -> None:
    batch = submit(http, "validations", [("one.pdf", sign_bb(card, source=pdf_bytes(text="one")))])
    done = wait_finished(http, batch["id"])
    time.sleep(0.5)
    assert http.get(f"/v1/batches/{done['id']}").json()["callback_status"] == "none"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://", "http://[::1/x", "https://e.x/" + "a" * 2000])
def test_a_bad_callback_url_is_refused_before_anything_is_stored(http: httpx.Client, url: str) -> None:
    before = len(http.get("/v1/batches").json())
    r = http.post("/v1/batches/validations", files=[("file", ("a.pdf", pdf_bytes(text="a")))],
                  data={"callback_url": url})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request", r.text
    assert len(http.get("/v1/batches").json()) == before


def test_the_callback_of_a_dead_receiver_ends_failed(http: httpx.Client, card: Card) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    batch = submit(http, "validations", [("x.pdf", sign_bb(card, source=pdf_bytes(text="x")))], callback_url=dead)
    wait_finished(http, batch["id"])
    final = wait_callback(http, batch["id"], "failed", timeout=120)  # after REMOTESIGN_CALLBACK_MAX_ATTEMPTS
    assert final["status"] == "finished" and final["items"]["done"] == 1, final
