"""The server-side file browser, over HTTP: what a user may see inside the allowed roots, and nothing outside."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from tests.helpers import api_client

URL = "/api/training/select-local-file"
SECRET = "TOP-SECRET-payroll.csv"


def browse(client: TestClient, path: str | None = None):
    return client.get(URL, params={} if path is None else {"path": path})


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A sibling of the allowed root sharing its prefix, holding a file whose name must never leak."""
    evil = tmp_path / "allowed-evil"
    evil.mkdir()
    (evil / SECRET).write_text("salaries")
    return evil


@pytest.fixture
def tree(allowed_root: Path, outside: Path) -> Path:
    (allowed_root / "sub" / "nested").mkdir(parents=True)
    (allowed_root / "Zeta").mkdir()
    (allowed_root / "a.txt").write_bytes(b"abc")
    (allowed_root / "B.bin").write_bytes(b"0123456789")
    (allowed_root / ".hidden").write_bytes(b"")
    (allowed_root / "sub" / "inner.jpg").write_bytes(b"x" * 42)
    (allowed_root / "escape").symlink_to(outside, target_is_directory=True)
    (allowed_root / "leak.csv").symlink_to(outside / SECRET)
    (allowed_root / "dangling").symlink_to(outside / "does-not-exist")
    (allowed_root / "broken").symlink_to(allowed_root / "gone")
    (allowed_root / "shortcut").symlink_to(allowed_root / "sub", target_is_directory=True)
    os.mkfifo(allowed_root / "pipe")
    return allowed_root


def assert_reveals_nothing(response, outside: Path) -> None:
    body = response.text
    assert SECRET not in body
    assert "allowed-evil" not in body
    assert "salaries" not in body
    if response.status_code >= 400:  # an error names no path at all, not even the one asked for
        assert "/" not in response.json()["detail"]


# -- listing ------------------------------------------------------------------------------------------------
def test_no_path_lists_the_allowed_roots(client: TestClient, allowed_root: Path) -> None:
    response = browse(client)
    assert response.status_code == 200
    body = response.json()
    assert body["path"] is None and body["parent"] is None and body["truncated"] is False
    assert [(e["name"], e["path"], e["type"]) for e in body["entries"]] == [
        ("allowed", str(allowed_root), "dir")
    ]


def test_root_listing_shows_types_sizes_and_order(client: TestClient, tree: Path, outside: Path) -> None:
    response = browse(client, str(tree))
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == str(tree)
    assert body["parent"] is None
    assert body["truncated"] is False
    listed = [(e["name"], e["type"], e["size"]) for e in body["entries"]]
    assert listed == [
        ("shortcut", "dir", None),
        ("sub", "dir", None),
        ("Zeta", "dir", None),
        (".hidden", "file", 0),
        ("a.txt", "file", 3),
        ("B.bin", "file", 10),
    ]
    for entry in body["entries"]:
        assert entry["path"] == str(tree / entry["name"])
        assert entry["modified"].endswith(("Z", "+00:00"))
    assert_reveals_nothing(response, outside)


def test_subfolder_path_can_be_fed_back_and_parent_leads_home(client: TestClient, tree: Path) -> None:
    root_entries = browse(client, str(tree)).json()["entries"]
    sub_path = next(e["path"] for e in root_entries if e["name"] == "sub")

    sub = browse(client, sub_path).json()
    assert sub["path"] == str(tree / "sub")
    assert sub["parent"] == str(tree)
    assert [(e["name"], e["type"], e["size"]) for e in sub["entries"]] == [
        ("nested", "dir", None),
        ("inner.jpg", "file", 42),
    ]
    nested = browse(client, sub["entries"][0]["path"]).json()
    assert nested["path"] == str(tree / "sub" / "nested")
    assert nested["entries"] == []
    assert browse(client, nested["parent"]).json()["path"] == str(tree / "sub")


def test_symlink_inside_the_roots_is_followed_to_its_real_path(client: TestClient, tree: Path) -> None:
    body = browse(client, str(tree / "shortcut")).json()
    assert body["path"] == str(tree / "sub")
    assert "inner.jpg" in [e["name"] for e in body["entries"]]


def test_relative_path_is_taken_from_the_first_root(client: TestClient, tree: Path) -> None:
    body = browse(client, "sub/nested/..").json()
    assert body["path"] == str(tree / "sub")


def test_a_file_path_lists_just_that_file(client: TestClient, tree: Path) -> None:
    response = browse(client, str(tree / "B.bin"))
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == str(tree / "B.bin")
    assert body["parent"] == str(tree)
    assert [(e["name"], e["path"], e["type"], e["size"]) for e in body["entries"]] == [
        ("B.bin", str(tree / "B.bin"), "file", 10)
    ]


def test_a_fifo_is_refused_when_named(client: TestClient, tree: Path) -> None:
    assert browse(client, str(tree / "pipe")).status_code == 400


def test_large_folder_is_cut_at_1000_with_folders_first(client: TestClient, allowed_root: Path) -> None:
    big = allowed_root / "big"
    big.mkdir()
    for index in range(1003):
        (big / f"img_{index:05d}.jpg").touch()
    (big / "zz-folder").mkdir()
    body = browse(client, str(big)).json()
    assert body["truncated"] is True
    assert len(body["entries"]) == 1000
    assert body["entries"][0]["name"] == "zz-folder"
    assert body["entries"][1]["name"] == "img_00000.jpg"
    assert body["entries"][-1]["name"] == "img_00998.jpg"


def test_missing_path_inside_a_root_is_404(client: TestClient, allowed_root: Path) -> None:
    response = browse(client, str(allowed_root / "no-such-folder"))
    assert response.status_code == 404
    assert "no-such-folder" not in response.text


# -- confinement --------------------------------------------------------------------------------------------
ESCAPES = [
    "../allowed-evil",
    f"../allowed-evil/{SECRET}",
    "sub/../../allowed-evil",
    "{root}/../allowed-evil",
    "{root}-evil",
    f"{{root}}-evil/{SECRET}",
    "{root}/escape",
    f"{{root}}/escape/{SECRET}",
    "{root}/leak.csv",
    "{root}/dangling",
    "{outside}",
    "{tmp}",
    "/",
    "/etc",
    "/etc/passwd",
    "/no/such/place/anywhere",
    "..",
]


@pytest.mark.parametrize("raw", ESCAPES)
def test_paths_outside_the_roots_are_403_and_reveal_nothing(
    client: TestClient, tree: Path, outside: Path, raw: str
) -> None:
    path = raw.format(root=tree, outside=outside, tmp=tree.parent)
    response = browse(client, path)
    assert response.status_code == 403
    assert response.json() == {"detail": "path is outside the allowed roots"}
    assert_reveals_nothing(response, outside)


def test_outside_answers_do_not_depend_on_existence(client: TestClient, tree: Path, outside: Path) -> None:
    existing = browse(client, str(outside / SECRET))
    missing = browse(client, str(outside / "nothing-here.csv"))
    assert (existing.status_code, existing.text) == (missing.status_code, missing.text)


@pytest.mark.parametrize(
    "query",
    [
        "%2e%2e%2fallowed-evil",
        "%2E%2E%2Fallowed-evil%2F" + SECRET,
        "..%2fallowed-evil",
        "{root}%2f%2e%2e%2fallowed-evil",
        "{root}%2D%65vil",
    ],
)
def test_url_encoded_traversal_is_403(client: TestClient, tree: Path, outside: Path, query: str) -> None:
    response = client.get(f"{URL}?path={query.format(root=tree)}")
    assert response.status_code == 403
    assert_reveals_nothing(response, outside)


@pytest.mark.parametrize(
    "query", ["%252e%252e%252fallowed-evil", "%252e%252e%252fallowed-evil%252f" + SECRET, "..%255c..%255cetc"]
)
def test_double_encoded_traversal_is_a_literal_name_and_not_found(
    client: TestClient, tree: Path, outside: Path, query: str
) -> None:
    response = client.get(f"{URL}?path={query}")
    assert response.status_code == 404
    assert_reveals_nothing(response, outside)


@pytest.mark.parametrize("query", ["%00", "{root}%00", "{root}%2fsub%00%2f..%2f..%2fallowed-evil"])
def test_nul_byte_is_400(client: TestClient, tree: Path, outside: Path, query: str) -> None:
    response = client.get(f"{URL}?path={query.format(root=tree)}")
    assert response.status_code == 400
    assert_reveals_nothing(response, outside)


def test_overlong_path_is_400(client: TestClient, allowed_root: Path) -> None:
    assert browse(client, str(allowed_root) + "/a" * 5000).status_code == 400


# -- configuration and permissions --------------------------------------------------------------------------
@pytest.fixture
def rootless_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", allowed_roots=[], default_workers=0)
    with api_client(settings) as test_client:
        yield test_client


@pytest.mark.parametrize("path", [None, "/", "/etc", "relative"])
def test_without_configured_roots_everything_is_403(rootless_client: TestClient, path: str | None) -> None:
    response = browse(rootless_client, path)
    assert response.status_code == 403
    assert "IMAGEREC_ALLOWED_ROOTS" in response.json()["detail"]


def test_unreadable_folder_is_403_not_500(
    client: TestClient, allowed_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = allowed_root / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    response = browse(client, str(locked))
    assert response.status_code == 403
    assert "permission denied" in response.json()["detail"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_unreadable_folder_on_disk_is_403(client: TestClient, allowed_root: Path) -> None:
    locked = allowed_root / "locked"
    (locked / "inside").mkdir(parents=True)
    locked.chmod(0)
    try:
        assert browse(client, str(locked)).status_code == 403
        assert browse(client, str(locked / "inside")).status_code == 403
    finally:
        locked.chmod(0o700)
