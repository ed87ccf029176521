"""The end user's pages in three languages: every text translated with the same placeholders, the
language chosen as OpenID Connect and HTTP say, and the verification code people compare."""

from __future__ import annotations

import base64
import string

import pytest

from remotesign.api.html_pages import verification_code
from remotesign.api.page_text import LOCALES, TEXTS, PageText, choose_locale
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
