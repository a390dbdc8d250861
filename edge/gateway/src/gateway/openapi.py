"""The public API's one OpenAPI document, put together from the upstreams' own documents."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from yarl import URL

from chassis import get_logger

if TYPE_CHECKING:
    from gateway.proxy import Proxy
    from gateway.settings import GatewaySettings, Route

Spec = dict[str, Any]

# Every FastAPI service publishes its document here.
UPSTREAM_SPEC_PATH = "/openapi.json"
BEARER_SCHEME = "bearerAuth"
_GATEWAY = "gateway"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF_HEAD = "#/components/"
_PROBLEM_SCHEMA: Spec = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}

_log = get_logger("gateway.openapi")


def _problem_response(description: str, challenge: bool) -> Spec:
    response: Spec = {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/GatewayProblem"}}
        },
    }
    if challenge:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": "The Bearer challenge (RFC 6750 §3).",
                "schema": {"type": "string"},
            }
        }
    return response


# What the gateway adds to every document; an upstream's component of the same name is renamed.
_GATEWAY_COMPONENTS: Spec = {
    "schemas": {"GatewayProblem": _PROBLEM_SCHEMA},
    "securitySchemes": {BEARER_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    "responses": {
        "GatewayUnauthorized": _problem_response("No valid bearer access token.", challenge=True),
        "GatewayForbidden": _problem_response(
            "The token lacks a scope the route needs.", challenge=True
        ),
    },
}


def public_path(route: Route, upstream_path: str) -> str | None:
    """Where the upstream's ``upstream_path`` is served through ``route``; None if not there."""
    if route.rewrite is not None:
        head = route.rewrite.rstrip("/")
        if not (upstream_path == head or upstream_path.startswith(head + "/")):
            return None
        candidate = route.prefix + upstream_path[len(head) :]
    elif not route.strip_prefix or route.prefix == "/":
        candidate = upstream_path
    else:
        candidate = route.prefix if upstream_path == "/" else route.prefix + upstream_path
    # Only what the route really sends back to that same upstream path.
    if not route.matches(candidate) or route.upstream_path(candidate) != upstream_path:
        return None
    return candidate


@dataclass(frozen=True)
class _Exposure:
    """Which upstream paths the public may reach, and under which public path."""

    routes: list[Route]
    internal_paths: frozenset[str]
    internal_prefixes: tuple[str, ...]

    def public(self, route: Route, upstream_path: str) -> str | None:
        path = public_path(route, upstream_path)
        if path is None or self._internal(upstream_path):
            return None
        # A longer prefix elsewhere in the table takes that path away from this route.
        owner = next((r for r in self.routes if r.matches(path)), None)
        return path if owner == route else None

    def _internal(self, upstream_path: str) -> bool:
        return upstream_path in self.internal_paths or any(
            (upstream_path + "/").startswith(prefix) for prefix in self.internal_prefixes
        )


def public_document(
    settings: GatewaySettings, specs: Mapping[str, Spec | None], *, title: str, version: str
) -> Spec:
    """One OpenAPI 3.1 document of every public path, from each upstream's document.

    ``specs`` maps upstream names to their documents; a missing or None one adds no paths.
    """
    routes = settings.route_table()
    exposure = _Exposure(routes, settings.internal_paths, settings.internal_prefixes)
    available = {name: spec for name, spec in specs.items() if spec is not None}
    sources: dict[str, Spec] = {_GATEWAY: _GATEWAY_COMPONENTS}
    sources.update({name: spec.get("components", {}) for name, spec in available.items()})
    renames = _component_names(sources)
    components: Spec = {}
    for source, sections in sources.items():
        for section, named in sections.items():
            for name, value in named.items():
                components.setdefault(section, {})[renames[source][section, name]] = _with_refs(
                    value, renames[source]
                )
    gateway_ref = renames[_GATEWAY]
    paths: Spec = {}
    operation_ids: set[str] = set()
    # Each upstream's operation ids as published, and its operations (for their links).
    published_ids: dict[str, dict[str, str]] = {}
    published: list[tuple[str, Spec]] = []
    # Shortest prefix first, so the document reads in the order of the route table's config.
    for route in sorted(routes, key=lambda r: r.prefix):
        spec = available.get(route.upstream)
        if spec is None:
            continue
        for upstream_path, item in spec.get("paths", {}).items():
            path = exposure.public(route, upstream_path)
            if path is None:
                continue
            public_item = _with_refs(item, renames[route.upstream])
            for method in _METHODS:
                operation = public_item.get(method)
                if operation is None:
                    continue
                own_id = operation.get("operationId")
                _unique_operation_id(operation, route.upstream, operation_ids)
                if isinstance(own_id, str):
                    published_ids.setdefault(route.upstream, {})[own_id] = operation["operationId"]
                published.append((route.upstream, operation))
                if route.auth == "required":
                    _guard(operation, route, gateway_ref)
                _gateway_answers(operation, gateway_ref)
            paths[path] = public_item
    for upstream, operation in published:
        _relink(operation, published_ids.get(upstream, {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every public route of the gateway, from its services' own documents.",
        },
        "paths": paths,
        "components": components,
    }


def _component_names(sources: Mapping[str, Spec]) -> dict[str, dict[tuple[str, str], str]]:
    """Each source's component names in the merged document: clashing ones get its name."""
    definitions: dict[tuple[str, str], dict[str, Any]] = {}
    for source, sections in sources.items():
        for section, named in sections.items():
            for name, value in named.items():
                definitions.setdefault((section, name), {})[source] = value
    clashing = {
        key
        for key, by_source in definitions.items()
        if len({_canonical(value) for value in by_source.values()}) > 1
        or (_GATEWAY in by_source and len(by_source) > 1)
    }
    # A shared definition that refers to a renamed one differs per source after all.
    changed = True
    while changed:
        changed = False
        for key, by_source in definitions.items():
            if key not in clashing and any(
                _refers_to(value) & clashing for value in by_source.values()
            ):
                clashing.add(key)
                changed = True
    return {
        source: {
            (section, name): (
                f"{source}.{name}" if (section, name) in clashing and source != _GATEWAY else name
            )
            for section, named in sections.items()
            for name in named
        }
        for source, sections in sources.items()
    }


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _split_ref(ref: str) -> tuple[str, str, str] | None:
    """(section, name, rest) of a reference into components; None for any other."""
    if not ref.startswith(_REF_HEAD):
        return None
    section, _, tail = ref[len(_REF_HEAD) :].partition("/")
    name, slash, rest = tail.partition("/")
    return section, name, slash + rest


def _refers_to(value: object) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for ref in _refs(value):
        parts = _split_ref(ref)
        if parts is not None:
            found.add(parts[:2])
    return found


def _refs(value: object) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _with_refs(value: Any, names: Mapping[tuple[str, str], str]) -> Any:
    """A copy of ``value`` whose references into components use the merged names."""
    if isinstance(value, dict):
        copied = {}
        for key, item in value.items():
            parts = _split_ref(item) if key == "$ref" and isinstance(item, str) else None
            if parts is not None:
                section, name, rest = parts
                copied[key] = f"{_REF_HEAD}{section}/{names.get((section, name), name)}{rest}"
            else:
                copied[key] = _with_refs(item, names)
        return copied
    if isinstance(value, list):
        return [_with_refs(item, names) for item in value]
    return value


def _unique_operation_id(operation: Spec, upstream: str, seen: set[str]) -> None:
    # Two services may both call an operation "list_items"; ids must be unique in a document.
    operation_id = operation.get("operationId")
    if not isinstance(operation_id, str):
        return
    unique, n = operation_id, 1
    while unique in seen:
        unique = f"{upstream}.{operation_id}" + (f".{n}" if n > 1 else "")
        n += 1
    operation["operationId"] = unique
    seen.add(unique)


def _relink(operation: Spec, published_ids: Mapping[str, str]) -> None:
    """Point the operation's links at the ids the merged document gives their targets; a link
    to an operation the public cannot reach is dropped."""
    for response in operation.get("responses", {}).values():
        links = response.get("links") if isinstance(response, dict) else None
        if not isinstance(links, dict):
            continue
        for name, link in list(links.items()):
            target = link.get("operationId") if isinstance(link, dict) else None
            if isinstance(target, str) and target in published_ids:
                link["operationId"] = published_ids[target]
            else:
                del links[name]
        if not links:
            del response["links"]


def _guard(operation: Spec, route: Route, gateway_ref: Mapping[tuple[str, str], str]) -> None:
    """Declare the gateway's token check: a bearer token with the route's scopes, 401 and 403."""
    scheme = gateway_ref["securitySchemes", BEARER_SCHEME]
    bearer = {scheme: list(route.scopes)}
    # Alternatives the service accepts; the gateway's token is needed on top of each.
    alternatives = operation.get("security") or [{}]
    operation["security"] = [{**alternative, **bearer} for alternative in alternatives]
    responses = operation.setdefault("responses", {})
    gateway_problem = {"$ref": f"{_REF_HEAD}schemas/{gateway_ref['schemas', 'GatewayProblem']}"}
    for status, name in (("401", "GatewayUnauthorized"), ("403", "GatewayForbidden")):
        service_says = responses.get(status)
        if service_says is None:
            responses[status] = {"$ref": f"{_REF_HEAD}responses/{gateway_ref['responses', name]}"}
            continue
        # The service's own problem, or the gateway's when the gateway refused first (a
        # problem of its own shape: bff-mobile's has a `code` the gateway's lacks).
        _or_gateway_problem(service_says, gateway_problem)
        service_says.setdefault("headers", {}).setdefault(
            "WWW-Authenticate", _problem_response("", challenge=True)["headers"]["WWW-Authenticate"]
        )


# What the gateway itself may answer on any route, before or instead of the service: no
# route for the path (404), a body too large (413, with a body), a rate limit (429), and an
# upstream that failed (502), cannot be reached (503) or did not answer in time (504).
_GATEWAY_STATUSES = {
    "404": "No route serves the path (an id that is no path segment, say).",
    "429": "A rate limit of the gateway; retry after Retry-After.",
    "502": "The service dropped the request.",
    "503": "No instance of the service is reachable; retry after Retry-After.",
    "504": "The service did not answer within the route's timeout.",
}


def _gateway_answers(operation: Spec, gateway_ref: Mapping[tuple[str, str], str]) -> None:
    """Document the gateway's own answers on this operation, next to the service's."""
    responses = operation.setdefault("responses", {})
    gateway_problem = {"$ref": f"{_REF_HEAD}schemas/{gateway_ref['schemas', 'GatewayProblem']}"}
    statuses = dict(_GATEWAY_STATUSES)
    if "requestBody" in operation:
        statuses["413"] = "The body is larger than the route takes."
    for status, description in statuses.items():
        service_says = responses.get(status)
        if service_says is None or "$ref" in service_says:
            responses.setdefault(
                status,
                {
                    "description": description,
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": gateway_problem}},
                },
            )
            continue
        _or_gateway_problem(service_says, gateway_problem)


def _or_gateway_problem(response: Spec, gateway_problem: Spec) -> None:
    """Let ``response``'s problem be the gateway's too (anyOf the service's and the gateway's)."""
    content = response.setdefault("content", {})
    body = content.setdefault(PROBLEM_MEDIA_TYPE, {})
    schema = body.get("schema")
    if schema and schema != gateway_problem and "anyOf" not in schema:
        body["schema"] = {"anyOf": [schema, gateway_problem]}
    elif not schema:
        body["schema"] = gateway_problem


class PublicApiDocument:
    """Serves :func:`public_document`, fetching each upstream's document at most once a ``ttl``.

    An upstream that cannot be reached leaves its paths out (with a warning) until it can.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        proxy: Proxy,
        session: Callable[[], aiohttp.ClientSession],
        *,
        title: str,
        version: str,
        ttl: float = 30.0,
        failure_ttl: float = 5.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.proxy = proxy
        self.title = title
        self.version = version
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self._session = session
        self._timeout = aiohttp.ClientTimeout(
            total=fetch_timeout, sock_connect=settings.connect_timeout
        )
        self._clock = clock
        self._cache: dict[str, tuple[float, Spec | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def document(self) -> Spec:
        """The current public document."""
        upstreams = sorted({route.upstream for route in self.settings.route_table()})
        specs = await asyncio.gather(*(self._spec(name) for name in upstreams))
        return public_document(
            self.settings,
            dict(zip(upstreams, specs, strict=True)),
            title=self.title,
            version=self.version,
        )

    async def _spec(self, upstream: str) -> Spec | None:
        # One fetch at a time per upstream: a burst of readers shares it.
        async with self._locks.setdefault(upstream, asyncio.Lock()):
            cached = self._cache.get(upstream)
            if cached is not None and cached[0] > self._clock():
                return cached[1]
            spec = await self._fetch(upstream)
            ttl = self.ttl if spec is not None else self.failure_ttl
            self._cache[upstream] = (self._clock() + ttl, spec)
            return spec

    async def _fetch(self, upstream: str) -> Spec | None:
        for base in self.proxy.balancers[upstream].candidates():
            try:
                async with self._session().get(
                    URL(base + UPSTREAM_SPEC_PATH),
                    # The proxy's session passes bodies on as they come: ask for them plain.
                    headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                    allow_redirects=False,
                    timeout=self._timeout,
                ) as response:
                    if response.status != 200:
                        _log.warning(
                            "upstream openapi refused",
                            upstream=upstream,
                            url=base,
                            status=response.status,
                        )
                        continue
                    spec = json.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                _log.warning(
                    "upstream openapi unavailable", upstream=upstream, url=base, error=repr(exc)
                )
                continue
            if isinstance(spec, dict) and isinstance(spec.get("paths"), dict):
                return spec
            _log.warning("upstream openapi is not a document", upstream=upstream, url=base)
        _log.warning("public openapi leaves out an upstream", upstream=upstream)
        return None


def publish(app: FastAPI, document: PublicApiDocument) -> None:
    """Serve ``document`` at the app's OpenAPI URL instead of the gateway's own few routes."""

    async def openapi() -> JSONResponse:
        return JSONResponse(await document.document())

    url = app.openapi_url or UPSTREAM_SPEC_PATH
    route = APIRoute(url, openapi, methods=["GET"], include_in_schema=False)
    # In the place of FastAPI's own route, ahead of the gateway's catch-all.
    for index, existing in enumerate(app.router.routes):
        if getattr(existing, "path", None) == url:
            app.router.routes[index] = route
            return
    app.router.routes.insert(0, route)
