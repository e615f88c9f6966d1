"""`daraja models …` as an operator uses it, on the real fixture packages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
HT_EN = FIXTURES / "fixture_ht_en.argosmodel"
EN_FR = FIXTURES / "fixture_en_fr.argosmodel"


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "models"
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["models", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_empty_points_to_catalog(
    models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "list")
    assert status == 0
    assert "no models installed" in out
    assert "daraja models catalog" in out


def test_install_of_a_package_that_does_not_load_is_one_clear_line(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    broken = tmp_path / "broken.argosmodel"
    with zipfile.ZipFile(HT_EN) as zin, zipfile.ZipFile(broken, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("sentencepiece.model"):
                data = b"garbage"
            zout.writestr(info, data)
    status, out, err = run(capsys, "install", str(broken))
    assert status == 1
    assert "fixture_ht_en does not load, so it is not installed" in err
    assert "sentencepiece.model" in err
    assert "Traceback" not in err
    status, out, _ = run(capsys, "list")
    assert "no models installed" in out


def test_install_list_remove_cycle(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "install", str(HT_EN))
    assert status == 0
    assert "installed fixture_ht_en: ht→en" in out
    assert "unpacking" in err  # progress goes to stderr

    status, out, _ = run(capsys, "list")
    assert status == 0
    assert "fixture_ht_en" in out
    assert "ht→en" in out
    assert "KB" in out

    status, out, _ = run(capsys, "list", "--json")
    doc = json.loads(out)
    [pkg] = doc["packages"]
    assert pkg["pairs"] == ["ht-en"]
    assert pkg["source"] == str(HT_EN.resolve())
    assert pkg["size_bytes"] > 0
    assert len(pkg["sha256"]) == 64

    status, out, _ = run(capsys, "remove", "fixture_ht_en")
    assert status == 0
    status, out, _ = run(capsys, "list", "--json")
    assert json.loads(out)["packages"] == []


def test_verify_reports_a_tampered_package(
    models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "install", str(HT_EN))
    status, out, _ = run(capsys, "verify")
    assert status == 0
    assert "ok       fixture_ht_en" in out
    model_bin = models_dir / "fixture_ht_en" / "model" / "model.bin"
    data = bytearray(model_bin.read_bytes())
    data[-1] ^= 0xFF
    model_bin.write_bytes(bytes(data))
    status, out, _ = run(capsys, "verify")
    assert status == 1
    assert "CHANGED  fixture_ht_en" in out
    status, out, _ = run(capsys, "list", "--verify", "--json")
    assert status == 1
    assert json.loads(out)["packages"][0]["verified"] is False


def test_bad_archive_is_one_line_error_without_traceback(
    models_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.argosmodel"
    bad.write_bytes(b"garbage")
    status = main(["models", "install", str(bad)])
    _, err = capsys.readouterr()
    assert status == 1
    assert "not a zip" in err
    assert "Traceback" not in err
    status, out, _ = run(capsys, "list", "--json")
    assert json.loads(out)["packages"] == []


def test_unknown_install_argument_says_what_to_do(
    models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["models", "install", "not-a-file-or-pair"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "neither an existing file" in err
    assert "Traceback" not in err


def test_remove_unknown_package(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["models", "remove", "nope"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "no installed package named 'nope'" in err


def test_catalog_covers_every_pair(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "catalog", "--json")
    assert status == 0
    doc = json.loads(out)
    langs = ("ht", "fr", "en", "sw")
    assert set(doc["pairs"]) == {f"{s}-{t}" for s in langs for t in langs if s != t}
    assert "argos-en-fr" in doc["pairs"]["en-fr"]
    assert "opus-mt-ht-en" in doc["pairs"]["ht-en"]
    for pair, keys in doc["pairs"].items():
        assert "nllb-200-distilled-600M" in keys, pair
    status, out, _ = run(capsys, "catalog")
    assert "convert-opus-mt" in out
    assert "ct2-transformers-converter" in out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a directory (no other network)."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_install_from_url(
    models_dir: Path, http_dir: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = http_dir
    (root / "ht_en.argosmodel").write_bytes(HT_EN.read_bytes())
    status, out, _ = run(capsys, "install", f"{base}/ht_en.argosmodel")
    assert status == 0
    status, out, _ = run(capsys, "list", "--json")
    [pkg] = json.loads(out)["packages"]
    assert pkg["source"] == f"{base}/ht_en.argosmodel"


def test_install_from_index(
    models_dir: Path, http_dir: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = http_dir
    (root / "en_fr.argosmodel").write_bytes(EN_FR.read_bytes())
    index = [
        {
            "package_version": "0.9",
            "argos_version": "1.0",
            "from_code": "en",
            "from_name": "English",
            "to_code": "fr",
            "to_name": "French",
            "links": [f"{base}/missing.argosmodel"],
        },
        {
            "package_version": "1.0",
            "argos_version": "1.0",
            "from_code": "en",
            "from_name": "English",
            "to_code": "fr",
            "to_name": "French",
            "links": [f"{base}/missing.argosmodel", f"{base}/en_fr.argosmodel"],
        },
    ]
    (root / "index.json").write_text(json.dumps(index))
    status, out, _ = run(capsys, "install", "en-fr", "--index-url", f"{base}/index.json")
    assert status == 0
    assert "en→fr" in out
    status, out, _ = run(capsys, "list", "--json")
    assert json.loads(out)["packages"][0]["source"] == "argos-index"
    status = main(["models", "install", "ht-sw", "--index-url", f"{base}/index.json"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "no ht→sw package" in err
    assert "daraja models catalog" in err


def test_index_unreachable_says_install_from_file(
    models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["models", "install", "en-fr", "--index-url", "http://127.0.0.1:9/index.json"])
    _, err = capsys.readouterr()
    assert status == 1
    assert "not reachable" in err
    assert "install FILE.argosmodel" in err


def test_cli_lists_json(models_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "install", str(HT_EN)]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["package_id"] for p in listed["packages"]] == ["fixture_ht_en"]
