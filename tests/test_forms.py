"""``OnlyDeclaredFormFields`` on a route shaped like the dataset upload (a sync handler, a file and two fields)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, UploadFile
from fastapi.testclient import TestClient

from imagerec.forms import OnlyDeclaredFormFields


def _tags(tags: Annotated[str | None, Form(alias="labels")] = None) -> str | None:
    return tags


def _app() -> FastAPI:
    router = APIRouter()

    @router.post("/upload", dependencies=[OnlyDeclaredFormFields])
    def upload(file: Annotated[UploadFile, File()], name: Annotated[str, Form()],
               tags: Annotated[str | None, Depends(_tags)]) -> dict:
        return {"name": name, "size": len(file.file.read()), "tags": tags}

    app = FastAPI()
    app.include_router(router, prefix="/api")
    return app


def test_declared_fields_pass_and_an_alias_counts_by_its_form_name() -> None:
    client = TestClient(_app())
    response = client.post("/api/upload", data={"name": "a", "labels": "x"}, files={"file": ("a.zip", b"abc")})
    assert response.status_code == 200, response.text
    assert response.json() == {"name": "a", "size": 3, "tags": "x"}


def test_an_unknown_field_is_a_422_listing_the_known_ones() -> None:
    client = TestClient(_app())
    response = client.post("/api/upload", data={"name": "a", "tags": "x", "task": "detect"},
                           files={"file": ("a.zip", b"abc")})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {"type": "extra_forbidden", "loc": ["body", field], "input": value,
         "msg": f"unknown form field '{field}'; known fields: file, name, labels"}
        for field, value in (("tags", "x"), ("task", "detect"))
    ]
