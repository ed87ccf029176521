"""The readable validation report: HTML (and its PDF) from ``remotesign validate --html/--pdf``,
from the validation endpoints (``report=html|pdf`` or ``Accept``), and from the upload page
``/validate`` in headless Chromium, for a passed, a failed and an indeterminate signature.

Each fact the page shows is checked against the JSON detailed report of the same file: the
verdict, every signature's indication and sub-indication, signer, format and level, the signed
files and byte ranges, the time-stamps, the certificate chain (by SHA-256) and every error and
warning, each under an EN 319 102-1 building block. The browser test keeps a screenshot of each
report (``REMOTESIGN_SCREENSHOT_DIR`` copies them out) and checks what a reader sees: the
verdict's colour, and no sideways scrolling on a 390 px phone screen."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest

from tests.harness import Service
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi, issue_card, sign_bb

pytestmark = [pytest.mark.slow]
CONFORMANCE = Path(__file__).resolve().parent / "data" / "conformance" / "files"
VERDICTS = {"passed": ("Valid", "TOTAL-PASSED"), "failed": ("Not valid", "TOTAL-FAILED"),
            "indeterminate": ("Cannot be confirmed", "INDETERMINATE")}


@pytest.fixture(scope="module")
def files(service: Service, http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A PDF signed with a certificate of the service's CA (passed), the same with one signed
    letter changed (failed), and pyHanko's test PDF whose CA this service does not trust (indeterminate)."""
    from cryptography import x509

    tmp = tmp_path_factory.mktemp("report-files")
    card = issue_card(service, tmp, cn="Report Signer")
    chain = x509.load_pem_x509_certificates(http.get("/pki/ca.pem").content)
    good = sign_bb(card, chain, pdf_bytes(text="the contract as agreed"))
    assert good.count(b"the contract as agreed") == 1
    bad = good.replace(b"as agreed", b"as AGREED")  # same length, inside the signed bytes
    return {"passed": good, "failed": bad, "indeterminate": (CONFORMANCE / "pyh-pades-pass-01.pdf").read_bytes()}


def post(service: Service, token: str, data: bytes, *, report: str | None = None,
         accept: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **({"Accept": accept} if accept else {})}
    return httpx.post(service.url + "/v1/validations", files=[("file", ("document.pdf", data))],
                      data={"report": report} if report else None, headers=headers, timeout=180)


def page_facts(html: str) -> dict[str, Any]:
    """What the page says, read back from its HTML."""
    tree = lxml.html.fromstring(html)
    facts: dict[str, Any] = {"verdict": tree.findtext(".//header/h1"), "signatures": []}
    for section in tree.xpath("//section[starts-with(@id, 'signature-')]"):
        verdict_line = section.xpath("./p/strong")[0].text_content().split(" / ")
        fields = {dt.text_content(): dd.text_content() for dt, dd in zip(section.xpath(".//dt"), section.xpath(".//dd"))}
        facts["signatures"].append({
            "indication": verdict_line[0], "sub_indication": verdict_line[1] if len(verdict_line) > 1 else None,
            "fields": fields, "text": section.text_content(),
            "chain": [c.text_content() for c in section.xpath(".//ol[@class='chain']/li//code")],
            "findings": [(tds[0].text_content(), tds[1].text_content(), tds[2].text_content())
                         for tds in (row.xpath("./td") for row in section.xpath(".//table[thead/tr/th='Finding']"
                                                                                "/tbody/tr"))],
        })
    return facts


def assert_same_facts(html: str, json_report: dict[str, Any], kind: str) -> None:
    facts = page_facts(html)
    assert facts["verdict"] == VERDICTS[kind][0], facts["verdict"]
    detailed = json_report["detailedReport"]["signatures"]
    assert len(facts["signatures"]) == len(detailed) >= 1
    for shown, signature in zip(facts["signatures"], detailed):
        assert shown["indication"] == signature["indication"] == VERDICTS[kind][1]
        assert shown["sub_indication"] == signature["subIndication"]
        assert shown["fields"]["Format"] == signature["signatureFormat"]
        assert shown["fields"]["Signature level"] == signature["signatureLevel"]
        assert shown["chain"] == [c["sha256"] for c in signature["certificateChain"]]
        for name in signature["signedFiles"]:
            assert name in shown["text"]
        for start, length in signature["signedByteRanges"]:
            assert f"{start}–{start + length - 1}" in shown["text"]
        for stamp in signature["timestamps"]:
            assert stamp["creationTime"][:19].replace("T", " ") in shown["text"]
        messages = [m for _, _, m in shown["findings"]]
        assert sorted(messages) == sorted(signature["errors"] + signature["warnings"] + signature["infos"])
        for severity, block, _ in shown["findings"]:
            assert severity in ("error", "warning", "note") and re.match(r"5\.\d", block), (severity, block)
    simple = json_report["simpleReport"]["signaturesExt"]
    for shown, signature in zip(facts["signatures"], simple):
        assert signature["signedBy"] is None or signature["signedBy"] in shown["fields"]["Signed by"]


@pytest.mark.parametrize("kind", ["passed", "failed", "indeterminate"])
def test_html_report_says_what_the_json_report_says(service: Service, demo_token: str, files: dict[str, bytes],
                                                    kind: str) -> None:
    json_report = post(service, demo_token, files[kind], report="detailed").json()
    r = post(service, demo_token, files[kind], accept="text/html")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:500]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert_same_facts(r.text, json_report, kind)
    if kind == "failed":
        assert "HASH_FAILURE" in r.text and "What is signed has changed" in r.text
    # JSON stays the default, and a wildcard does not change it
    assert post(service, demo_token, files[kind], accept="*/*").headers["content-type"].startswith("application/json")


def test_pdf_report_carries_the_same_verdict(service: Service, demo_token: str, files: dict[str, bytes],
                                             tmp_path: Path) -> None:
    r = post(service, demo_token, files["failed"], report="pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content[:5] == b"%PDF-"
    (tmp_path / "report.pdf").write_bytes(r.content)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    assert "Not valid" in text and "TOTAL-FAILED / HASH_FAILURE" in text and "Report Signer" in text
    accepted = post(service, demo_token, files["passed"], accept="application/pdf, application/json;q=0.5")
    assert accepted.headers["content-type"] == "application/pdf"


def test_eparaksts_validation_api_answers_html_on_request(service: Service, demo_token: str,
                                                          files: dict[str, bytes]) -> None:
    api = SignApi(service, demo_token)
    sid = api.start()
    doc = api.upload(sid, "contract.pdf", files["passed"])["data"]
    doc_id = doc["documentId"] if "documentId" in doc else doc["id"]
    r = api.client.get(f"/api-validation/v2.0/{sid}/{doc_id}/validate", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text[:300]
    assert page_facts(r.text)["verdict"] == "Valid"
    r = api.client.get(f"/api-validation/v2.0/{sid}/{doc_id}/validate")
    assert r.json()["data"]["signaturesExt"][0]["indication"] == "TOTAL-PASSED"


def test_cli_writes_html_and_pdf(service: Service, files: dict[str, bytes], tmp_path: Path) -> None:
    signed = tmp_path / "contract.pdf"
    signed.write_bytes(files["passed"])
    result = service.cli("validate", str(signed), "--html", str(tmp_path / "r.html"), "--pdf", str(tmp_path / "r.pdf"))
    assert "TOTAL-PASSED" in result.stdout.decode()  # the text report still goes to the terminal
    assert page_facts((tmp_path / "r.html").read_text())["verdict"] == "Valid"
    assert (tmp_path / "r.pdf").read_bytes()[:5] == b"%PDF-"
    printed = service.cli("validate", str(signed), "--html", "-").stdout.decode()
    assert printed.lstrip().startswith("<!DOCTYPE html>")


def test_upload_page_refuses_what_it_cannot_read(service: Service) -> None:
    page = httpx.get(service.url + "/validate", timeout=30)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    r = httpx.post(service.url + "/validate", files=[("file", ("notes.txt", b"no signature here"))], timeout=60)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "notes.txt" in r.text and "Traceback" not in r.text
    r = httpx.post(service.url + "/validate", content=b"not multipart", timeout=60,
                   headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    cross = httpx.post(service.url + "/validate", files=[("file", ("a.pdf", b"%PDF"))], timeout=60,
                       headers={"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


# -- the upload page in a browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.browser import chromium

    with chromium(tmp_path_factory.mktemp("chromium-profile")) as browser:
        yield browser


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["passed", "failed", "indeterminate"])
def test_upload_page_in_a_browser(service: Service, driver: Any, files: dict[str, bytes], kind: str,
                                  tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    document = tmp_path / f"{kind}.pdf"
    document.write_bytes(files[kind])
    driver.set_window_size(1100, 1400)
    driver.get(service.url + "/validate")
    driver.find_element(By.ID, "file").send_keys(str(document))
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 120).until(ec.presence_of_element_located((By.CSS_SELECTOR, "header.verdict h1")))
    heading = driver.find_element(By.CSS_SELECTOR, "header.verdict h1")
    assert heading.text == VERDICTS[kind][0]
    colour = driver.execute_script("return getComputedStyle(arguments[0]).color", heading)
    expected = {"passed": "rgb(27, 122, 61)", "failed": "rgb(179, 38, 30)", "indeterminate": "rgb(138, 90, 0)"}
    assert colour == expected[kind], colour
    shot = tmp_path / f"report-{kind}.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    driver.set_window_size(390, 844)  # a phone: nothing may need sideways scrolling
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the screen"
    driver.save_screenshot(str(tmp_path / f"report-{kind}-phone.png"))
    if os.environ.get("REMOTESIGN_SCREENSHOT_DIR"):
        for png in tmp_path.glob("report-*.png"):
            shutil.copy(png, Path(os.environ["REMOTESIGN_SCREENSHOT_DIR"]) / png.name)


def test_a_container_of_time_assertions_reports_each_time_stamp() -> None:
    """An ASiC-S holding only time-stamp tokens (digidoc4j's corpus row dd4j-asics-hash-01: the
    first token valid, the two renewals over a manifest that no longer matches): the page lists
    each with its own outcome, as the JSON report does, and the verdict follows the worst."""
    import asyncio

    from remotesign.validation.engine import validate_path
    from remotesign.validation.html_report import render_html
    from remotesign.validation.reports import detailed_report
    from tests.conformance import cases, options_for

    case = next(c for c in cases() if c.id == "dd4j-asics-hash-01")
    document = asyncio.run(validate_path(case.file, options_for(case), filename=case.file.name))
    stamps = detailed_report(document)["containerTimestamps"]
    assert [(t["indication"], t["subIndication"]) for t in stamps] == [
        ("TOTAL-PASSED", None), ("TOTAL-FAILED", "HASH_FAILURE"), ("TOTAL-FAILED", "HASH_FAILURE")]
    tree = lxml.html.fromstring(render_html(document))
    assert tree.findtext(".//header/h1") == "Not valid"
    rows = tree.xpath("//section[@id='container-timestamps']//tbody/tr")
    shown = [row.xpath("./td")[3].text_content() for row in rows]
    assert shown == [f"{t['indication']}{' / ' + t['subIndication'] if t['subIndication'] else ''}" for t in stamps]
