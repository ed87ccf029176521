"""The service's API description is a valid OpenAPI document that says what the service does.

* ``/openapi.json`` and each API's own ``/openapi/{api}.json`` pass openapi-spec-validator;
* every operation it lists, called with an empty body and with no credentials, a token that is
  none, one without the operation's scope, and the demo client's own, answers a status the
  operation documents, never a 500, and never a 2xx without credentials where it declares security;
* the documentation pages refer only to this service's own assets, which are served;
* the landing page links every API's description and documentation, and each link works.

A service of its own: the calls include state-changing ones (with empty bodies and ids that name
nothing, but still).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.harness import Service, free_port

validator = pytest.importorskip("openapi_spec_validator")

APIS = ("signapi", "esigp", "fortress", "remote-signing", "csc-v1", "csc-v2", "validation", "native", "pki")
# Path parameters: names that fix a value (the CSC version, the authorization server); any other
# gets an id that names nothing.
PATH_VALUES = {"version": "v2", "auth_server": "lvrtc-eipsign-as", "idp": "lvrtc-eipsign-as"}
NOTHING = "no-such-id"


@pytest.fixture(scope="module")
def own_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(home=tmp_path_factory.mktemp("openapi"), port=free_port()).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def client(own_service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=own_service.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def description(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def client_token(own_service: Service) -> str:
    """The demo client's token with its default scopes: past authentication into the handlers."""
    demo = own_service.demo_client()
    return own_service.token(demo["client_id"], demo["client_secret"])


@pytest.fixture(scope="module")
def scoped_out_token(own_service: Service) -> str:
    """A real client-credentials token with one scope only (the SignAPI's): valid, but not enough
    for the native, admin and validation operations."""
    demo = own_service.demo_client()
    return own_service.token(demo["client_id"], demo["client_secret"], "urn:safelayer:eidas:oauth:token:introspect")


def _errors(document: dict[str, Any]) -> list[str]:
    from openapi_spec_validator import OpenAPIV31SpecValidator

    return [str(error)[:500] for error in OpenAPIV31SpecValidator(document).iter_errors()]


def test_descriptions_are_valid_openapi(client: httpx.Client, description: dict[str, Any]) -> None:
    assert description["openapi"].startswith("3.1")
    assert _errors(description) == []
    for api in APIS:
        r = client.get(f"/openapi/{api}.json")
        assert r.status_code == 200, api
        assert r.json()["paths"], api
        assert _errors(r.json()) == [], api
    assert client.get("/openapi/no-such-api.json").status_code == 404


def test_signing_operations_and_bodies_are_described(description: dict[str, Any]) -> None:
    paths = description["paths"]
    assert "/api-sign/v1.0/{operation}" not in paths
    for name in ("CalculateDigest", "finalizeSigning", "addArchive", "eSealCreate"):
        operation = paths[f"/api-sign/v1.0/{name}"]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    for path, method, media in (("/api-storage/v1.0/{session_id}/upload", "put", "multipart/form-data"),
                                ("/v1/validations", "post", "multipart/form-data"),
                                ("/trustedx-authserver/oauth/{auth_server}/token", "post",
                                 "application/x-www-form-urlencoded")):
        assert media in paths[path][method]["requestBody"]["content"], (method, path)
    schemes = description["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] in {
        f"/trustedx-authserver/oauth/{PATH_VALUES['auth_server']}/token"}
    assert paths["/v1/keys"]["post"]["security"] == [{"oauth2": ["remotesign:keys"]}]
    assert paths["/trustedx-authserver/oauth/{auth_server}/token"]["post"]["security"] == [{"clientBasic": []}]


def _operations(description: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def _url(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: PATH_VALUES.get(m.group(1), NOTHING), path)


def _empty_body(operation: dict[str, Any]) -> dict[str, str]:
    """The headers of an empty body in the operation's first documented media type."""
    content = operation.get("requestBody", {}).get("content", {})
    if not content:
        return {}
    media = next(iter(content))
    return {"Content-Type": media + ("; boundary=remotesign-test" if media == "multipart/form-data" else "")}


def test_every_operation_answers_a_documented_status(client: httpx.Client, description: dict[str, Any],
                                                     scoped_out_token: str, client_token: str) -> None:
    credentials = {"none": {}, "client": {"Authorization": f"Bearer {client_token}"},
                   "wrong": {"Authorization": f"Bearer {scoped_out_token}"},
                   "garbage": {"Authorization": "Bearer not-a-token"}}
    failures: list[str] = []
    calls = 0
    for method, path, operation in _operations(description):
        documented = set(operation["responses"])
        for kind, auth in credentials.items():
            r = client.request(method, _url(path), headers={**auth, **_empty_body(operation)}, content=b"",
                               follow_redirects=False)
            calls += 1
            what = f"{method} {path} ({kind} credentials): {r.status_code}"
            if r.status_code == 500:
                failures.append(f"{what}, a server error: {r.text[:200]}")
            elif str(r.status_code) not in documented:
                failures.append(f"{what}, documented {sorted(documented)}: {r.text[:200]}")
            elif kind in ("none", "garbage") and operation.get("security") and 200 <= r.status_code < 300:
                failures.append(f"{what} without valid credentials though security is declared")
    assert calls >= 4 * 130
    assert not failures, "\n".join(failures)


def test_docs_pages_refer_only_to_local_assets(client: httpx.Client) -> None:
    pages = ["/docs", "/redoc", "/docs/oauth2-redirect"]
    pages += [f"/{kind}/{api}" for api in APIS for kind in ("docs", "redoc")]
    assets: set[str] = set()
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), page
        assert not re.search(r"https?://", r.text), page
        assert "connect-src 'self'" in r.headers["content-security-policy"], page
        assets.update(re.findall(r'(?:src|href)="(/[^"]+)"', r.text))
        assets.update(re.findall(r"url: '(/[^']+)'", r.text) + re.findall(r'spec-url="(/[^"]+)"', r.text))
    assert {"/static/api-docs/swagger-ui-bundle.js", "/static/api-docs/swagger-ui.css",
            "/static/api-docs/redoc.js", "/openapi.json", "/openapi/csc-v2.json"} <= assets
    for asset in sorted(assets):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert "javascript" in client.get("/static/api-docs/swagger-ui-bundle.js").headers["content-type"]


def test_landing_page_links_each_api(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    links = re.findall(r'href="([^"]+)"', r.text)
    for api in APIS:
        assert {f"/docs/{api}", f"/redoc/{api}", f"/openapi/{api}.json"} <= set(links), api
    for heading in ("SignAPI", "eSigP", "Fortress", "Remote Signing", "CSC API v1", "CSC API v2", "Validation",
                    "Native API", "PKI"):
        assert f"<h2>{heading}" in r.text, heading
    for link in links:
        assert client.get(link).status_code == 200, link
