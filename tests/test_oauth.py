"""OAuth2 client credentials at the TrustedX-style token endpoint, and RFC 7662 introspection."""

from __future__ import annotations

import base64

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Service

TOKEN = "/trustedx-authserver/oauth/lvrtc-eipsign-as/token"
INTROSPECT = "/trustedx-authserver/oauth/lvrtc-eipsign-as/introspect"
SIGNAPI_SCOPE = "urn:safelayer:eidas:oauth:token:introspect"


def test_eparaksts_client_library_request(http: httpx.Client, demo: dict[str, str]) -> None:
    """As dencel/eparaksts sends it: Basic with url-encoded parts, form body, SignAPI scope."""
    r = http.post(TOKEN, data={"grant_type": "client_credentials", "scope": SIGNAPI_SCOPE},
                  auth=(demo["client_id"], demo["client_secret"]))
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == SIGNAPI_SCOPE and body["expires_in"] > 0
    assert r.headers["cache-control"] == "no-store"


def test_query_string_parameters_are_accepted(http: httpx.Client, demo: dict[str, str]) -> None:
    r = http.post(TOKEN + "?grant_type=client_credentials", auth=(demo["client_id"], demo["client_secret"]))
    assert r.status_code == 200


def test_wrong_credentials(http: httpx.Client, demo: dict[str, str]) -> None:
    for auth in ((demo["client_id"], "wrong"), ("nobody", demo["client_secret"])):
        r = http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=auth)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        assert r.headers["www-authenticate"].startswith("Basic")
    r = http.post(TOKEN, data={"grant_type": "client_credentials"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = http.post(TOKEN, data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401


def test_grant_and_scope_errors(http: httpx.Client, demo: dict[str, str]) -> None:
    auth = (demo["client_id"], demo["client_secret"])
    r = http.post(TOKEN, data={"grant_type": "password"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = http.post(TOKEN, data={}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = http.post(TOKEN, data={"grant_type": "client_credentials", "scope": "openid"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    r = http.post(TOKEN, json={"grant_type": "client_credentials"}, auth=auth)
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = http.post("/trustedx-authserver/oauth/unknown-as/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert r.status_code == 404


def test_introspection_only_for_the_owner(service: Service, http: httpx.Client, demo: dict[str, str]) -> None:
    token = service.token(demo["client_id"], demo["client_secret"], SIGNAPI_SCOPE)
    r = http.post(INTROSPECT, data={"token": token}, auth=(demo["client_id"], demo["client_secret"]))
    body = r.json()
    assert body["active"] is True and body["client_id"] == demo["client_id"] and body["scope"] == SIGNAPI_SCOPE
    other = service.new_client("introspection stranger")
    r = http.post(INTROSPECT, data={"token": token}, auth=(other["client_id"], other["client_secret"]))
    assert r.json() == {"active": False}
    r = http.post(INTROSPECT, data={"token": "garbage"}, auth=(demo["client_id"], demo["client_secret"]))
    assert r.json() == {"active": False}
    r = http.post(INTROSPECT, data={"token": token})
    assert r.status_code == 401


def test_disabled_client_loses_its_tokens(service: Service, http: httpx.Client) -> None:
    c = service.new_client("to be disabled")
    token = service.token(c["client_id"], c["client_secret"])
    assert http.get("/v1/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    service.cli("client", "disable", c["client_id"])
    assert http.get("/v1/keys", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    r = http.post(TOKEN, data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
    assert r.status_code == 401
    service.cli("client", "enable", c["client_id"])
    assert service.token(c["client_id"], c["client_secret"])


_text = st.text(max_size=80)
_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=st.dictionaries(st.sampled_from(["grant_type", "scope", "client_id", "client_secret", "x"]), _text),
       auth_header=st.one_of(st.none(), _ascii.map(lambda t: ("Basic " + t).strip()),
                             st.binary(max_size=60).map(lambda b: ("Basic " + base64.b64encode(b).decode()).strip())),
       raw=st.one_of(st.none(), st.binary(max_size=300)))
def test_token_endpoint_never_fails_with_5xx(http: httpx.Client, form: dict[str, str], auth_header: str | None,
                                             raw: bytes | None) -> None:
    headers = {"Authorization": auth_header} if auth_header else {}
    if raw is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        r = http.post(TOKEN, content=raw, headers=headers)
    else:
        r = http.post(TOKEN, data=form, headers=headers)
    assert r.status_code in (200, 400, 401), r.text
    if r.status_code != 200:
        assert r.json()["error"] in ("invalid_request", "invalid_client", "unsupported_grant_type", "invalid_scope")
