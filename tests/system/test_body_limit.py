"""Bodies over the upload limit are refused before they are spooled, declared or chunked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from imagerec.body_limit import MULTIPART_SLACK
from imagerec.config import Settings
from tests.helpers import api_client

LIMIT = 10_000


@pytest.fixture
def small_client(tmp_path) -> Iterator[TestClient]:
    with api_client(Settings(data_dir=tmp_path / "data", upload_max_bytes=LIMIT)) as client:
        yield client


def test_declared_length_over_limit_is_413_before_reading(small_client):
    body = b"x" * (LIMIT + MULTIPART_SLACK + 1)
    response = small_client.post("/api/datasets", content=body,
                                 headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]


def test_chunked_body_over_limit_is_cut_off_with_413(small_client):
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 64 * 1024

    response = small_client.post("/api/datasets", content=chunks(),
                                 headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]


def test_small_bodies_pass_through(small_client):
    assert small_client.post("/api/training/regular", json={}).status_code == 422
