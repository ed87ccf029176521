"""Extension of files from the public conformance corpus (digidoc4j and EU DSS test suites) over the
Fortress-style API: a relying party adds the suites' trust anchors, extends to LTA with the
service's TSA, and the result validates TOTAL-PASSED at LTA (remotesign) with the added
signature intact (pdfsig for the PDF, xmlsec1 for the XAdES). Files whose signatures do not
validate now (no chain to the anchors, no revocation data for the current time) are refused."""

from __future__ import annotations

import base64
import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance import Case, cases
from tests.harness import Service
from tests.verifiers import xmlsec_verify

#: two PDF signatures whose validation data lives in an earlier revision's DSS dictionary (a later
#: one overwrote it): read from every revision, as EU DSS reads it, both are LTA and extend
EXTENDED = {"dd4j-asice-pass-01": "XADES_LTA", "dd4j-asice-pass-03": "XADES_LTA", "dss-pades-lta-01": "PADES_LTA"}
#: refused before anything is added: the signature does not validate now with the suite's anchors
REFUSED = {"dss-pades-t-01": "NO_CERTIFICATE_CHAIN_FOUND", "pyh-pades-pass-01": "CERTIFICATE_CHAIN_GENERAL_FAILURE"}
CASES = {c.id: c for c in cases() if c.id in EXTENDED or c.id in REFUSED}


@pytest.fixture(scope="module")
def relying_party(service: Service) -> Iterator[dict[str, httpx.Client]]:
    """A relying party of its own (its trust anchors stay its own) with a native and a Fortress token."""
    client = service.new_client("conformance corpus extension")
    native = httpx.Client(base_url=service.url, timeout=120, headers={
        "Authorization": f"Bearer {service.token(client['client_id'], client['client_secret'])}"})
    r = httpx.post(service.url + "/fortress/oauth2/v1/token", params={
        "client_id": client["client_id"], "client_secret": client["client_secret"],
        "grant_type": "client_credentials", "scope": "client"}, timeout=30)
    assert r.status_code == 200, r.text
    fortress = httpx.Client(base_url=service.url, timeout=120,
                            headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    added: set[Path] = set()
    for case in CASES.values():
        for anchor in case.anchors:
            if anchor in added:
                continue
            added.add(anchor)
            raw = anchor.read_bytes()
            text = raw.decode() if raw.lstrip().startswith(b"-----") else base64.b64encode(raw).decode()
            assert native.post("/v1/trust-anchors", json={"certificate": text}).status_code == 201
    yield {"native": native, "fortress": fortress}
    native.close()
    fortress.close()


def extend(client: httpx.Client, case: Case, signature_type: str) -> httpx.Response:
    return client.post("/fortress/api/v1/signature/extend", json={"extendSignatureConfigurations": [{
        "document": {"bytesB64": base64.b64encode(case.file.read_bytes()).decode(), "name": case.file.name},
        "signatureType": signature_type}]})


def report(client: httpx.Client, name: str, data: bytes) -> list[dict[str, Any]]:
    r = client.post("/v1/validations", files=[("file", (name, data))])
    assert r.status_code == 200, r.text
    return r.json()["simpleReport"]["signaturesExt"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("case_id", sorted(EXTENDED))
def test_corpus_file_extended_to_lta(relying_party: dict[str, httpx.Client], case_id: str, tmp_path: Path) -> None:
    case = CASES[case_id]
    original = case.file.read_bytes()
    r = extend(relying_party["fortress"], case, EXTENDED[case_id])
    assert r.status_code == 200, r.text
    result = base64.b64decode(r.json()["bytesB64"])
    sigs = report(relying_party["native"], case.file.name, result)
    assert sigs
    for sig in sigs:
        assert sig["indication"] == "TOTAL-PASSED", (sig["id"], sig.get("subIndication"), sig["errors"])
        assert sig["signatureFormat"].endswith("_BASELINE_LTA"), (sig["id"], sig["signatureFormat"])
    if case.file.suffix == ".pdf":
        assert result.startswith(original)
        path = tmp_path / "out.pdf"
        path.write_bytes(result)
        out = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, text=True).stdout
        assert "Signature is Valid." in out, out
    else:
        zf = zipfile.ZipFile(io.BytesIO(result))
        data = {n: zf.read(n) for n in zf.namelist() if not n.startswith("META-INF/") and n != "mimetype"}
        for name in (n for n in zf.namelist() if n.startswith("META-INF/") and "signature" in n.lower()):
            if b"-rsa-MGF1" in zf.read(name):
                continue  # RSASSA-PSS: Debian's xmlsec1 has no such transform (remotesign's validator passed it)
            ok, out = xmlsec_verify(tmp_path, zf.read(name), data, None)
            assert ok, f"{name}: {out[-1500:]}"


@pytest.mark.parametrize("case_id", sorted(REFUSED))
def test_corpus_file_that_does_not_validate_is_refused(relying_party: dict[str, httpx.Client], case_id: str) -> None:
    r = extend(relying_party["fortress"], CASES[case_id], "PADES_LTA")
    assert r.status_code == 400, r.text
    assert "signature_not_valid" in r.json()["error_description"] and REFUSED[case_id] in r.json()["error_description"]
