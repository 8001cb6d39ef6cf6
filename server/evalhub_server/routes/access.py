"""Projects and their tokens (the admin token only): create, list, revoke; tokens may expire."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from evalhub.protocol import ProjectCreate, TokenCreate
from evalhub.protocol.responses import Page, Project, TokenCreated, TokenInfo

from ..deps import COMMON_ERRORS, JSON, AdminDep, Limit, NamePath, Offset, StoreDep, errors

router = APIRouter(prefix="/api/projects", tags=["projects and tokens"], responses=COMMON_ERRORS)


@router.post("", status_code=201, response_model=Project, responses=errors(409))
def create_project(body: ProjectCreate, c: AdminDep, store: StoreDep) -> Any:
    return JSON(store.access.create_project(body.name), status_code=201)


@router.get("", response_model=Page[Project])
def list_projects(c: AdminDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0) -> Any:
    return JSON(store.access.list_projects(limit, offset))


@router.post("/{name}/tokens", status_code=201, response_model=TokenCreated, responses=errors(404, 409))
def create_token(name: NamePath, body: TokenCreate, c: AdminDep, store: StoreDep) -> Any:
    return JSON(store.access.create_token(name, body.name, body.expires_in_days), status_code=201)


@router.get("/{name}/tokens", response_model=Page[TokenInfo], responses=errors(404))
def list_tokens(name: NamePath, c: AdminDep, store: StoreDep, limit: Limit = 100, offset: Offset = 0) -> Any:
    return JSON(store.access.list_tokens(name, limit, offset))


@router.delete("/{name}/tokens/{token}", response_model=TokenInfo, responses=errors(404))
def revoke_token(name: NamePath, token: NamePath, c: AdminDep, store: StoreDep) -> Any:
    """Revoke a token: every server process refuses it within seconds (401 saying it was revoked)."""
    return JSON(store.access.revoke_token(name, token))
