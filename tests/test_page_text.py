"""The end user's pages in three languages: every text translated with the same placeholders, the
language chosen as OpenID Connect and HTTP say, and the verification code people compare."""

from __future__ import annotations

import ast
import base64
import string
from pathlib import Path

import pytest

import remotesign
from remotesign.api.html_pages import verification_code
from remotesign.api.page_text import LOCALES, TEXTS, PageText, choose_locale
from remotesign.core.consent import ConsentError
from remotesign.core.identities import IdentityError
from remotesign.core.one_time_passwords import OtpError
from remotesign.core.scopes import USER_SCOPES


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_has_each_language_with_the_same_placeholders(key: str) -> None:
    texts = TEXTS[key]
    assert len(texts) == len(LOCALES) and all(t.strip() for t in texts)
    assert len({frozenset(_fields(t)) for t in texts}) == 1, texts
    assert texts[1] != texts[0] and texts[2] != texts[0], key  # the English text unchanged: forgotten


def test_every_user_scope_is_described_in_each_language() -> None:
    for locale in LOCALES:
        for scope in USER_SCOPES:
            assert PageText(locale).scope(scope) != scope
        assert "18" in PageText(locale).scope("urn:lvrtc:fpeil:aa:age_18")


@pytest.mark.parametrize("ui_locales, accept, remembered, expected", [
    ("lv", "en-US,en;q=0.9", None, "lv"),                # the request's own choice first
    ("de vi-VN", None, None, "vi"),                      # the first supported of several
    ("de", "de-DE, lv;q=0.5, vi;q=0.7", None, "vi"),     # then the browser's, by quality
    (None, None, "lv", "lv"),                            # the language the login page chose
    (None, "lv;q=0, fr", None, "en"),                    # q=0 means "not this one"
    (None, "vi;q=abc, lv;q=0.1", None, "lv"),            # a malformed quality counts as 0
    (None, None, "xx", "en"), (None, None, None, "en"),
])
def test_the_language_is_chosen_as_oidc_and_http_say(ui_locales: str | None, accept: str | None,
                                                      remembered: str | None, expected: str) -> None:
    assert choose_locale(ui_locales, accept, remembered) == expected


def test_verification_code_is_the_summary_s_first_octets() -> None:
    digest = bytes(range(32))
    assert verification_code(base64.b64encode(digest).decode()) == "0001 0203 0405 0607"
    assert verification_code(base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("=")) == "FFFF FFFF FFFF FFFF"
    assert verification_code("not base64!") is None and verification_code("AAEC") is None


def _raised_reasons(module: str, names: set[str]) -> set[str]:
    """The reasons of the errors ``module`` raises that a page shows (those sent back to the
    client's redirect URI are the client's to word)."""
    tree = ast.parse((Path(remotesign.__file__).parent / module).read_text())
    reasons = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
            keywords = {k.arg: k.value for k in node.keywords}
            if "redirect_to" in keywords:
                continue
            reason = keywords.get("reason", node.args[0])
            assert isinstance(reason, ast.Constant | ast.IfExp), ast.dump(reason)
            reasons |= ({reason.value} if isinstance(reason, ast.Constant)
                        else {reason.body.value, reason.orelse.value})  # type: ignore[attr-defined]
    return reasons


def test_every_error_the_signer_can_meet_on_the_pages_is_translated() -> None:
    shown = (_raised_reasons("core/consent.py", {"ConsentError", "OtpError"})
             | {"identity_disabled", "user_disabled", "certificate_expired", "certificate_revoked",  # check_usable
                "no_device", "otp_not_sent", "no_otp_channel"})
    for_integrators = {"invalid_request"}  # "state is too long": a broken client, not the signer's to fix
    missing = sorted(r for r in shown - for_integrators if f"error:{r}" not in TEXTS)
    assert not missing
    assert len(shown) >= 15


def test_core_errors_are_said_in_the_page_s_language() -> None:
    wrong = OtpError("otp_invalid", "wrong one-time code, 3 tries left", 403, reason="otp_wrong", values={"left": 3})
    assert PageText("lv").error(wrong) == "Nepareizs vienreizējais kods, atlikuši mēģinājumi: 3."
    assert PageText("vi").error(wrong) == "Sai mã dùng một lần, còn 3 lần thử."
    assert PageText("en").error(wrong) == "Wrong one-time code, 3 tries left."
    disabled = IdentityError("identity_disabled", "sign identity x is disabled", status=403)
    assert PageText("lv").error(disabled) == "Šī parakstīšanas identitāte ir atspējota."
    expired = ConsentError("expired", "this sign-in page has expired", reason="page_expired")
    assert "derīguma termiņš" in PageText("lv").error(expired)
    # no page text: the error's own message; a text whose value the error lacks: the message too
    assert PageText("lv").error(IdentityError("invalid_pin", "a PIN has 4 to 64 characters")) == \
        "a PIN has 4 to 64 characters"
    assert PageText("vi").error(OtpError("otp_invalid", "wrong code", reason="otp_wrong")) == "wrong code"
