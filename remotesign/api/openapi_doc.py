"""The error responses in ``/openapi.json`` say what the service really answers.

Routes and routers declare which error statuses they can answer with ``responses=errors(...)``; this
module gives those a description, and, once for the whole schema, the body each API really sends
(``errors.error_response`` decides it by path: native JSON, the SignAPI envelope, RFC 6749 JSON,
an HTML page, an OCSP / RFC 3161 message, or an API's own shapes: Remote Signing's responseCode and
LoopBack bodies, ``register_error_bodies``). FastAPI documents a 422 for every route with
parameters; the service answers such a request with 400 in the API's shape (errors.py), so that 422
is replaced by 400. A client generated from the description, or a schema-driven test, then meets no
status or body the document does not name.
"""

from __future__ import annotations

import warnings
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from remotesign.api.errors import _is_oauth_path, _is_signapi_path, is_html_page

DESCRIPTIONS = {
    400: "The request is malformed or invalid (the error names the field)",
    401: "Credentials are missing, unknown or expired",
    403: "Authenticated, but not allowed (scope, sole control, another site's form)",
    404: "No such object (also: another client's object)",
    409: "The object's state does not allow it (already done, in progress, taken)",
    410: "Closed, expired or finished",
    413: "The request body is too large",
    422: "The document cannot be validated (unsupported or unreadable format)",
    429: "Too many failed attempts; wait as Retry-After says",
    500: "The operation failed unexpectedly (the service log names the request)",
    502: "A service this operation needs (the time-stamping authority, the mail or SMS gateway) failed",
    503: "Temporarily unavailable (storage, or the validation took too long); retry later",
}

_ERROR = {"type": "object", "required": ["code", "message"],
          "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": _ERROR},
              "description": "Error of remotesign's own API"},
    "EnvelopeError": {"type": "object", "properties": {"data": {}, "error": _ERROR},
                      "description": "SignAPI envelope: data is null for a whole-request error; a batch lists "
                                     "each session with its own error"},
    "OAuthError": {"type": "object", "required": ["error"],
                   "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
                   "description": "RFC 6749 error (TrustedX authorization server and eSigP resources)"},
}
PROTOCOL_MEDIA_TYPES = {"/pki/ocsp": "application/ocsp-response", "/pki/tsa": "application/timestamp-reply"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route or router: these error statuses, described; bodies are added by path."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


_STORAGE = 503  # storage_unavailable: any call that reads or writes state can meet a full or failed volume
# The error statuses each API (a router of the composition root) can answer; a route adds its own
# with ``responses=errors(...)``.
API_ERRORS: dict[str, dict[int | str, dict[str, Any]]] = {
    "account": errors(400, 403, 404, 429, _STORAGE),
    "health": errors(503),
    "oauth": errors(400, 401, 404, 413, 429, _STORAGE),
    "pki": errors(400, 404, 413),
    "native": errors(400, 401, 403, 404, 409, 413, _STORAGE),
    "admin": errors(400, 401, 403, 404, 409, 413, 429, _STORAGE),
    "pages": {303: {"description": "Back to the client's redirect URI (code, or error=access_denied)"},
              **errors(400, 401, 403, 404, 410, 429, _STORAGE)},
    "validation": errors(400, 401, 403, 404, 409, 413, 503),
    "validation_page": errors(400, 403, 404, 413, 422, 503),
    "eparaksts": errors(400, 401, 403, 404, 409, 410, 413, 502, 503),
    "esigp": errors(400, 401, 403, 404, 409, 410, 413, 429, _STORAGE),
    "devices": errors(400, 401, 403, 404, 409, 410, 413, 429, _STORAGE),
    "fortress": errors(400, 401, 403, 404, 409, 410, 413, 422, 502, _STORAGE),
    # 500: 1003 UNEXPECTED EXCEPTION, the answer to a failure of a service the operation needs (a
    # time-stamping authority, the mail gateway) too
    "remote_signing": errors(400, 401, 403, 404, 413, 500, _STORAGE),
    # 500: signPolling passes on the answer of the asynchronous call, server_error included; 502: the
    # time-stamping authority (signatures/timestamp, signDoc at T and above), the one-time-code gateway
    "csc": errors(400, 401, 403, 404, 409, 413, 429, 500, 502, _STORAGE),
}


def form_body(fields: dict[str, dict[str, Any]], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads an URL-encoded form itself (OAuth, the HTML forms)."""
    schema = {"type": "object", "properties": fields, "required": list(required)}
    return {"requestBody": {"required": True,
                            "content": {"application/x-www-form-urlencoded": {"schema": schema}}}}


def binary_body(media_type: str, description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a DER protocol message (OCSP, RFC 3161)."""
    return {"requestBody": {"required": True, "description": description,
                            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}


_JSON_MODELS: list[type[BaseModel]] = []
# The error bodies of an API that answers its own shapes (register_error_bodies): path prefix ->
# (bodies by status, the body of any other status)
_ERROR_BODIES: dict[str, tuple[dict[int, tuple[type[BaseModel], ...]], tuple[type[BaseModel], ...]]] = {}


def register_error_bodies(prefix: str, default: type[BaseModel],
                          by_status: dict[int, tuple[type[BaseModel], ...]] | None = None) -> None:
    """The error answers of the API under ``prefix`` are ``default`` (``by_status``: for these
    statuses, any of those models) instead of the shapes ``errors.error_content`` chooses: what an
    API that renders its own errors (``errors.register_protocol_errors``) documents."""
    for model in (default, *(m for models in (by_status or {}).values() for m in models)):
        if model not in _JSON_MODELS:
            _JSON_MODELS.append(model)
    _ERROR_BODIES[prefix] = (dict(by_status or {}), (default,))


def json_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself (to parse it off the event
    loop): documented as ``model``, whose schema joins the components when the description is built."""
    if model not in _JSON_MODELS:
        _JSON_MODELS.append(model)
    body: dict[str, Any] = {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def json_body_schema(types: dict[str, str], required: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads a JSON object itself, described field by field
    (``{"name": "string" | "integer" | "boolean" | "array" | "object"}``)."""
    properties = {name: ({"type": "array", "items": {}} if kind == "array" else {"type": kind})
                  for name, kind in types.items()}
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"requestBody": {"required": bool(required), "content": {"application/json": {"schema": schema}}}}


def _add_json_models(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _JSON_MODELS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components.setdefault(model.__name__, model_schema)
    return schema


def multipart_body(files: dict[str, str], fields: dict[str, dict[str, Any]] | None = None,
                   required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route that streams a multipart upload itself."""
    properties: dict[str, Any] = {name: {"type": "string", "format": "binary", "description": text}
                                  for name, text in files.items()}
    properties.update(fields or {})
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


def binary_answer(*media_types: str, description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that answers bytes of one of ``media_types`` (a media range such
    as ``*/*`` when the type is the stored document's own). Give the route ``response_class=Response``
    too, so FastAPI adds no JSON entry beside them."""
    return {status: {"description": description,
                     "content": {media: {"schema": dict(BINARY)} for media in media_types}}}


def json_answer(model: Any, description: str, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose ``status`` JSON answer ``model`` describes (a pydantic model,
    or a type such as ``list[M]``). The handler builds the JSON itself: give the route
    ``response_model=None`` (or return a Response), so FastAPI neither reshapes the answer nor
    documents its own schema beside this one."""
    return {status: {"model": model, "description": description}}


def absent(description: str | None = None, **schema: Any) -> Any:
    """An answer model's field that is sometimes left out, never null: not required, and no
    ``default: null`` in the schema (the field keeps its own type); ``schema`` adds keywords
    (``enum=[...]``). Such models have ``extra="forbid"``, so the description lists every key."""

    def document(field_schema: dict[str, Any]) -> None:
        field_schema.pop("default", None)
        field_schema.update(schema)

    return Field(default=None, description=description, json_schema_extra=document)


def text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error_content(path: str, status: str) -> dict[str, Any]:
    for prefix, media in PROTOCOL_MEDIA_TYPES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return {media: {"schema": {"type": "string", "format": "binary"}}}
    for prefix, (by_status, default) in _ERROR_BODIES.items():
        if path == prefix or path.startswith(prefix + "/"):
            models = by_status.get(int(status), default) if status.isdigit() else default
            schema = _ref(models[0]) if len(models) == 1 else {"anyOf": [_ref(m) for m in models]}
            return {"application/json": {"schema": schema}}
    if is_html_page(path):
        return {"text/html": {"schema": {"type": "string"}}}
    name = "OAuthError" if _is_oauth_path(path) else "EnvelopeError" if _is_signapi_path(path) else "Error"
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite the generated schema in place: 422 -> 400, and every error response gets its body."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses and _is_fastapi_422(responses["422"]):
                del responses["422"]
                responses.setdefault("400", {"description": DESCRIPTIONS[400]})
            for status, response in responses.items():
                if status[:1] in ("4", "5") and "content" not in response:
                    response["content"] = _error_content(path, status)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(SCHEMAS)
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def unique_operation_ids(schema: dict[str, Any]) -> dict[str, Any]:
    """A route serving two methods (``PUT`` and ``POST`` upload, ``GET`` and ``POST`` users/me) gets
    one operationId from FastAPI; OpenAPI wants them unique, so the later ones take their method."""
    seen: set[str] = set()
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            op_id = operation.get("operationId")
            if op_id in seen:
                operation["operationId"] = f"{op_id}_{method}"
            seen.add(operation.get("operationId"))
    return schema


def install(app: FastAPI) -> None:
    """Serve the rewritten description at ``/openapi.json``: error bodies and statuses as answered,
    unique operation ids, and the security each operation takes."""
    from remotesign.api.openapi_security import document_security

    generate = app.openapi
    auth_server = app.state.services.settings.default_auth_server

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():  # FastAPI warns of the duplicate ids fixed just after
                warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
                generated = generate()
            schema = unique_operation_ids(document_errors(_add_json_models(generated)))
            app.openapi_schema = document_security(schema, app, auth_server)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
