"""``/api/keys``: create, list and revoke API keys (admin scope)."""

from __future__ import annotations

from fastapi import APIRouter, status

from imagerec.auth import repository, service
from imagerec.auth.schemas import KeyCreate, KeyCreated, KeyRead
from imagerec.deps import CallerDep, SessionDep, SettingsDep
from imagerec.fields import IdPath

router = APIRouter()


@router.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED,
             summary="Create an API key (the key is in this answer only)")
def create_key(body: KeyCreate, session: SessionDep, caller: CallerDep):
    key, plaintext = service.create(session, name=body.name, scopes=body.scopes, expires_at=body.expires_at,
                                    created_by=caller.name)
    return KeyCreated(**KeyRead.model_validate(key).model_dump(), key=plaintext)


@router.get("", response_model=list[KeyRead], summary="Every key (never the keys themselves)")
def list_keys(session: SessionDep):
    return repository.list_keys(session)


@router.delete("/{key_id}", response_model=KeyRead, summary="Revoke a key: refused from the next request on")
def revoke_key(key_id: IdPath, session: SessionDep, settings: SettingsDep):
    return service.revoke(session, key=service.get_or_404(session, key_id=key_id), data_dir=settings.data_dir)
