from fastapi import APIRouter, Request

from imagerec import __version__
from imagerec.system.schemas import Health

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, openapi_extra={"security": []})  # open: no key
def health(request: Request) -> Health:
    state = request.app.state
    return Health(
        status="ok",
        version=__version__,
        database=state.settings.database_kind,
        executor=state.executor.state(),
    )
