"""Reference apps the HTTP benches measure Souk against, served as Souk serves its apps.

``python bench/upstreams.py hello PORT``: a bare Starlette app answering ``/healthz`` with a
small JSON body, the floor a chassis process is compared with.

``python bench/upstreams.py fastapi PORT``: the same from a bare FastAPI app, the floor of
the framework the chassis is built on.

``python bench/upstreams.py fixed PORT JWKS``: a fixed-answer plain ASGI app, cheap enough
that a proxy in front of it is the bottleneck. It answers every path with the same
product-sized JSON, except the two an issuer serves: the signing keys (the JSON Web Key
Set given as JWKS) and an empty list of revoked grants, so a gateway can check tokens the
bench signed itself.

All run on uvicorn with ``chassis.serve.server_config``'s options (uvloop, httptools, no
access log).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

PRODUCT = json.dumps(
    {
        "id": "3f0c7a52-61b4-5a0e-9f3e-1b7e1a0c0f11",
        "sku": "TEA-MINT-GUNPOWDER",
        "name": "Gunpowder green tea with mint",
        "description": "Rolled green tea leaves and dried spearmint, brewed sweet.",
        "category": "tea-coffee",
        "price": {"amount": 650, "currency": "EUR"},
        "version": 1,
    },
    separators=(",", ":"),
).encode()


def hello_app() -> Any:
    """A bare Starlette app: one route, no middleware of its own."""
    from starlette.applications import Starlette  # noqa: PLC0415 - bench process only
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    async def healthz(_: Any) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "hello", "instance": "hello-1"})

    return Starlette(routes=[Route("/healthz", healthz)])


def fastapi_hello_app() -> Any:
    """The same answer from a bare FastAPI app: the framework the chassis is built on."""
    from fastapi import FastAPI  # noqa: PLC0415 - bench process only

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "hello", "instance": "hello-1"}

    return app


def fixed_app(jwks: bytes) -> Any:
    """A plain ASGI app with fixed answers (and an issuer's keys and revocation list)."""
    answers = {
        "/.well-known/jwks.json": jwks,
        "/internal/revocations": b'{"grants":[]}',
    }

    async def app(scope: dict[str, Any], _receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = answers.get(scope["path"], PRODUCT)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", choices=["hello", "fastapi", "fixed"])
    parser.add_argument("port", type=int)
    parser.add_argument("jwks", nargs="?", default="{}")
    args = parser.parse_args()
    apps = {"hello": hello_app, "fastapi": fastapi_hello_app}
    app = apps[args.app]() if args.app in apps else fixed_app(args.jwks.encode())
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
