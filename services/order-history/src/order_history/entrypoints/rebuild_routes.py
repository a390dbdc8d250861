"""Internal routes for `souk replay order-history`: start a rebuild, follow its progress.

Under ``/internal/``, which the gateway never routes: only the operator's CLI reaches them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from chassis.problems import ProblemError
from order_history.entrypoints.schemas import RebuildPublic
from order_history.service_layer.rebuilding import AlreadyRebuildingError, Rebuilds

router = APIRouter(prefix="/internal/rebuild", tags=["internal"], include_in_schema=False)


def _rebuilds(request: Request) -> Rebuilds:
    rebuilds: Rebuilds = request.app.state.rebuilds
    return rebuilds


@router.post("")
async def start_rebuild(request: Request) -> JSONResponse:
    """Rebuild the read model from the event archive, in the background: 202 and its status."""
    try:
        status = _rebuilds(request).start()
    except AlreadyRebuildingError as error:
        raise ProblemError(409, "rebuild-running", "A rebuild is running", str(error)) from error
    return JSONResponse(RebuildPublic.from_status(status).model_dump(mode="json"), status_code=202)


@router.get("")
async def rebuild_status(request: Request) -> RebuildPublic:
    """Where the latest rebuild stands; 404 if none was started since this instance started."""
    status = _rebuilds(request).status
    if status is None:
        raise ProblemError(
            404, "rebuild-not-found", "No rebuild", "no rebuild was started on this instance"
        )
    return RebuildPublic.from_status(status)
