"""Every service's OpenAPI document says what its code answers and accepts.

FastAPI documents some things its own way, not the way a chassis app answers them:

- an error is ``application/problem+json`` (chassis.problems), but ``problem_responses`` and
  FastAPI's own 422 list it under ``application/json`` too (or only there);
- the Idempotency-Key header is read as optional (so that a missing one is a 400 problem
  saying why, not a bare 422) yet every route that reads it needs it, in its pattern;
- a body whose bytes cannot be decoded is a 400 on any route that reads one.

``document_as_answered(app)`` rewrites the generated document once, when it is first asked
for, so that the specs say exactly what the code accepts (schemathesis checks both ways).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chassis.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH, IDEMPOTENCY_KEY_PATTERN
from chassis.problems import PROBLEM_MEDIA_TYPE, Problem

if TYPE_CHECKING:
    from fastapi import FastAPI

Spec = dict[str, Any]

_JSON = "application/json"
_PROBLEM_REF = "#/components/schemas/Problem"
# FastAPI's own description of a 422 it answers with {"detail": [...]}; ours is a problem.
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def document_as_answered(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the generated document, rewritten as answered."""
    generate = app.openapi

    def openapi() -> Spec:
        if app.openapi_schema is None:
            app.openapi_schema = as_answered(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def as_answered(spec: Spec) -> Spec:
    """``spec`` with problems under their media type and Idempotency-Key required."""
    uses_problem = False
    for item in spec.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation and "400" not in responses:
                # A body that is not even readable (bytes no codec takes) is refused so.
                responses["400"] = {
                    "description": "A body that cannot be read",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _PROBLEM_REF}}},
                }
            for response in responses.values():
                uses_problem |= _problem_media_type(response)
            for parameter in operation.get("parameters", []):
                _idempotency_key(parameter)
    if uses_problem:
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", _problem_schema())
        # Nothing refers to FastAPI's validation error documents any more.
        if not _refers(spec.get("paths", {}), _FASTAPI_VALIDATION_REF):
            schemas.pop("HTTPValidationError", None)
            if not _refers(schemas, "#/components/schemas/ValidationError"):
                schemas.pop("ValidationError", None)
    return spec


def _problem_schema() -> Spec:
    """The Problem model as FastAPI documents a response model, so that the same component
    from two services is one in the gateway's merged document."""
    schema = Problem.model_json_schema(mode="serialization", ref_template=_PROBLEM_REF)
    for definition in schema.get("properties", {}).values():
        definition.pop("default", None)
    return schema


def _problem_media_type(response: Spec) -> bool:
    content = response.get("content")
    if not isinstance(content, dict):
        return False
    json_body = content.get(_JSON, {})
    if json_body.get("schema", {}).get("$ref") == _FASTAPI_VALIDATION_REF:
        # FastAPI's default 422: answered as a problem by chassis.problems.
        content.pop(_JSON)
        content[PROBLEM_MEDIA_TYPE] = {"schema": {"$ref": _PROBLEM_REF}}
        return True
    if PROBLEM_MEDIA_TYPE not in content:
        return False
    problem = content[PROBLEM_MEDIA_TYPE]
    if not problem.get("schema"):
        problem["schema"] = json_body.get("schema", {"$ref": _PROBLEM_REF})
    # problem_responses(...) put the model under application/json: no error is sent so.
    content.pop(_JSON, None)
    return True


def _idempotency_key(parameter: Spec) -> None:
    if parameter.get("in") != "header" or parameter.get("name", "").lower() != "idempotency-key":
        return
    parameter["required"] = True
    schema = {key: value for key, value in parameter.get("schema", {}).items() if key != "anyOf"}
    schema.update(
        type="string",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        minLength=1,
        maxLength=IDEMPOTENCY_KEY_MAX_LENGTH,
    )
    parameter["schema"] = schema


def _refers(value: object, ref: str) -> bool:
    if isinstance(value, dict):
        return value.get("$ref") == ref or any(_refers(item, ref) for item in value.values())
    if isinstance(value, list):
        return any(_refers(item, ref) for item in value)
    return False


def links(status: int, **targets: tuple[str, dict[str, str]]) -> dict[int | str, Spec]:
    """A route's ``responses`` entry naming what its answer leads to (OpenAPI links).

    ``links(201, GetOrder=("get_order", {"order_id": "$response.body#/id"}))``: a client (and
    schemathesis's stateful runs) reads the created order back with its id.
    """
    return {
        status: {
            "links": {
                name: {"operationId": operation_id, "parameters": parameters}
                for name, (operation_id, parameters) in targets.items()
            }
        }
    }
