"""Task images come from the configured Label Studio (with its token) or an allowed root, never elsewhere."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from imagerec.config import Settings
from imagerec.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from imagerec.labelstudio import connections
from imagerec.labelstudio.images import LabelStudioUnavailable, open_fetcher
from tests.labelstudio.fake_label_studio import FakeLabelStudio

pytestmark = pytest.mark.anyio
IMAGE = b"\x89PNG fake image bytes"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def label_studio():
    with FakeLabelStudio(files={"/data/upload/3/a.png": IMAGE}) as fake:
        yield fake


def make_settings(tmp_path: Path, label_studio: FakeLabelStudio | None, **overrides) -> Settings:
    values = dict(data_dir=tmp_path / "data", allowed_roots=[tmp_path])
    if label_studio is not None:
        values |= dict(labelstudio_url=label_studio.url, labelstudio_api_token=label_studio.token)
    return Settings(**(values | overrides))


async def fetch(settings: Settings, reference: object):
    async with open_fetcher(settings, connections.configured(settings)) as fetcher:
        return await fetcher.fetch(reference)


async def test_relative_and_same_host_urls_are_fetched_from_label_studio_with_its_token(tmp_path, label_studio):
    settings = make_settings(tmp_path, label_studio)
    relative = await fetch(settings, "/data/upload/3/a.png")
    absolute = await fetch(settings, f"{label_studio.url}/data/upload/3/a.png")
    assert relative.data == absolute.data == IMAGE and relative.file_name == "a.png"
    assert [r.authorization for r in label_studio.requests] == ["Token secret-token"] * 2


@pytest.mark.parametrize("reference", ["http://127.0.0.1:{other}/data/upload/3/a.png", "//127.0.0.1:{other}/x.png",
                                       "http://localhost:{port}/data/upload/3/a.png"])
async def test_another_host_is_refused_and_never_contacted(tmp_path, label_studio, reference):
    with FakeLabelStudio(files={"/data/upload/3/a.png": IMAGE, "/x.png": IMAGE}) as other:
        url = reference.format(other=other.server.server_address[1], port=label_studio.server.server_address[1])
        with pytest.raises(Forbidden) as refused:
            await fetch(make_settings(tmp_path, label_studio), url)
    assert "refused" in refused.value.message and other.requests == [] and label_studio.requests == []


async def test_a_redirect_off_the_label_studio_host_is_not_followed(tmp_path, label_studio):
    with FakeLabelStudio(files={"/s3/a.png": IMAGE}) as other:
        label_studio.redirects["/tasks/1/presign/?fileuri=eA=="] = f"{other.url}/s3/a.png"
        label_studio.redirects["/data/upload/3/old.png"] = "/data/upload/3/a.png"
        label_studio.redirects["/data/upload/3/api.png"] = "/api/projects/1/exports"
        settings = make_settings(tmp_path, label_studio)
        with pytest.raises(Forbidden, match="redirected"):
            await fetch(settings, "/tasks/1/presign/?fileuri=eA==")
        assert (await fetch(settings, "/data/upload/3/old.png")).data == IMAGE  # same host, a media path: followed
        with pytest.raises(Forbidden, match="redirected .* which is refused"):
            await fetch(settings, "/data/upload/3/api.png")  # same host, not a media path
    assert other.requests == []
    assert "/api/projects/1/exports" not in [r.path for r in label_studio.requests]


@pytest.mark.anyio
async def test_a_listed_media_host_is_fetched_from_without_the_token(tmp_path, label_studio):
    with FakeLabelStudio(files={"/s3/a.png": IMAGE}, token="") as storage:
        label_studio.redirects["/tasks/1/resolve/?fileuri=eA=="] = f"{storage.url}/s3/a.png"
        settings = make_settings(tmp_path, label_studio, labelstudio_media_hosts=[storage.url])
        storage.authorised = lambda authorization: authorization is None  # it must never see the token
        assert (await fetch(settings, "/tasks/1/resolve/?fileuri=eA==")).data == IMAGE  # a pre-signed redirect
        assert (await fetch(settings, f"{storage.url}/s3/a.png")).data == IMAGE  # named in the task itself
    assert [r.authorization for r in storage.requests] == [None, None]
    assert label_studio.requests[0].authorization == f"Token {label_studio.token}"


@pytest.mark.parametrize(("base", "reference", "allowed"), [
    ("/ls", "/data/upload/3/a.png", True),  # a relative reference is taken under the sub-path
    ("/ls", "{url}/ls/data/upload/3/a.png", True),
    ("/ls", "{url}/data/upload/3/a.png", False),  # not under the sub-path: not Label Studio's
    ("/ls", "{url}/ls/../api/projects/1/exports", False),
])
async def test_a_label_studio_under_a_sub_path_is_checked_below_it(tmp_path, label_studio, base, reference, allowed):
    label_studio.files["/ls/data/upload/3/a.png"] = IMAGE
    settings = make_settings(tmp_path, label_studio, labelstudio_url=label_studio.url + base)
    if allowed:
        assert (await fetch(settings, reference.format(url=label_studio.url))).data == IMAGE
    else:
        with pytest.raises(Forbidden, match="refused"):
            await fetch(settings, reference.format(url=label_studio.url))
        assert label_studio.requests == []


async def test_without_a_configured_label_studio_relative_urls_say_which_settings_to_set(tmp_path):
    with pytest.raises(Forbidden) as refused:
        await fetch(make_settings(tmp_path, None), "/data/upload/3/a.png")
    assert "IMAGEREC_LABELSTUDIO_URL" in refused.value.message
    assert "IMAGEREC_LABELSTUDIO_API_TOKEN" in refused.value.message


@pytest.mark.parametrize(("reference", "error"), [
    ("s3://bucket/a.png", BadRequest), ("file:///etc/passwd", BadRequest), ("gs://b/a.png", BadRequest),
    ("images/a.png", BadRequest), (None, BadRequest), (42, BadRequest), ("", BadRequest),
])
async def test_other_schemes_and_non_urls_are_refused(tmp_path, label_studio, reference, error):
    with pytest.raises(error):
        await fetch(make_settings(tmp_path, label_studio), reference)
    assert label_studio.requests == []


async def test_label_studio_errors_become_clear_messages(tmp_path, label_studio):
    settings = make_settings(tmp_path, label_studio)
    with pytest.raises(NotFound, match="no file"):
        await fetch(settings, "/data/upload/3/missing.png")
    wrong_token = make_settings(tmp_path, label_studio, labelstudio_api_token="wrong")
    with pytest.raises(LabelStudioUnavailable, match="IMAGEREC_LABELSTUDIO_API_TOKEN"):
        await fetch(wrong_token, "/data/upload/3/a.png")
    unreachable = make_settings(tmp_path, None, labelstudio_url="http://127.0.0.1:9")
    with pytest.raises(LabelStudioUnavailable, match="could not fetch"):
        await fetch(unreachable, "/data/upload/3/a.png")


async def test_images_over_the_size_limit_are_refused(tmp_path, label_studio):
    label_studio.files["/data/upload/3/big.png"] = b"x" * 5000
    settings = make_settings(tmp_path, label_studio, annotate_max_file_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        await fetch(settings, "/data/upload/3/big.png")
    with pytest.raises(PayloadTooLarge):
        await fetch(settings, "data:image/png;base64," + base64.b64encode(b"x" * 5000).decode())


async def test_local_files_are_read_from_an_allowed_root_first(tmp_path, label_studio):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "b.png").write_bytes(IMAGE)
    label_studio.files["/data/local-files/?d=elsewhere/c.png"] = IMAGE
    settings = make_settings(tmp_path, label_studio)
    from_disk = await fetch(settings, "/data/local-files/?d=images/b.png")
    assert (from_disk.data, from_disk.file_name, label_studio.requests) == (IMAGE, "b.png", [])
    assert (await fetch(settings, "/data/local-files/?d=elsewhere/c.png")).data == IMAGE  # not on disk: asked LS
    with pytest.raises(NotFound):  # ../ out of the root is not read from disk; Label Studio has no such file
        await fetch(settings, "/data/local-files/?d=../../etc/passwd")


async def test_data_urls_are_decoded(tmp_path):
    image = await fetch(make_settings(tmp_path, None), "data:image/png;base64," + base64.b64encode(IMAGE).decode())
    assert image.data == IMAGE
