"""A run's files: uploaded raw, listed, downloaded (only files the server holds are served)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse

from evalhub.protocol import responses as r

from ..deps import COMMON_ERRORS, JSON, CallerDep, Limit, Offset, RunId, StoreDep, errors

router = APIRouter(prefix="/api/runs", tags=["artifacts"], responses=COMMON_ERRORS)

Name = Annotated[str, Path(min_length=1, max_length=255, description="letters, digits and . _ - + =")]


@router.put(
    "/{run_id}/artifacts/{name}", status_code=201, response_model=r.ArtifactInfo, responses=errors(404)
)
async def put_artifact(run_id: RunId, name: Name, request: Request, c: CallerDep, store: StoreDep) -> Any:
    """The request body is the file: streamed to disk as it arrives (any size up to the server's
    ``--max-artifact-bytes``, bounded memory), hashed, stored once per content."""
    artifacts = store.artifacts
    artifacts.check_name(name)
    await run_in_threadpool(artifacts.check_run, c.project_id, run_id)
    upload = await run_in_threadpool(artifacts.open_upload)
    try:
        async for chunk in request.stream():
            if chunk:
                upload.write(chunk)
        out = await run_in_threadpool(artifacts.commit_upload, run_id, name, upload)
    except BaseException:
        upload.discard()
        raise
    return JSON(out, status_code=201)


@router.get("/{run_id}/artifacts", response_model=r.Page[r.ArtifactInfo], responses=errors(404))
def list_artifacts(
    run_id: RunId, c: CallerDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0
) -> Any:
    return JSON(store.artifacts.list(c.project_id, run_id, limit, offset))


@router.get(
    "/{run_id}/artifacts/{name}",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"},
        **errors(404),
    },
)
def get_artifact(run_id: RunId, name: Name, c: CallerDep, store: StoreDep) -> Any:
    """The file's bytes, streamed (from disk, or from the remote store the server keeps them in)."""
    stored = store.artifacts.stored(c.project_id, run_id, name)
    if stored.path is not None:
        return FileResponse(stored.path, filename=name)
    quoted = quote(name)  # the Content-Disposition a FileResponse sends for a local file
    disposition = (
        f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"
    )
    return StreamingResponse(
        stored.chunks(),
        media_type="application/octet-stream",
        headers={"content-length": str(stored.size), "content-disposition": disposition},
    )
