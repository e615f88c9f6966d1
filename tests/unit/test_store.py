"""The model store with the real fixture packages: install, list, remove, verify, bad archives."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from translation.errors import MissingModel, ModelIntegrityError, PackageError
from translation.store import RECORD_NAME, ModelStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))
HT_EN = FIXTURES / "fixture_ht_en.argosmodel"
MULTI = FIXTURES / "fixture_multi_ht_fr_sw.argosmodel"


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def visible_entries(store: ModelStore) -> list[str]:
    """Every name in the models dir except argostranslate's settings folder."""
    if not store.root.exists():
        return []
    return sorted(p.name for p in store.root.iterdir() if p.name != ".argos")


def rewrite(src: Path, dst: Path, edit: dict[str, bytes | None]) -> Path:
    """Copy an archive, replacing (bytes) or dropping (None) the named entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in edit:
                data = edit[info.filename]
                if data is not None:
                    zout.writestr(info.filename, data)
                continue
            zout.writestr(info, zin.read(info.filename))
        for name, data in edit.items():
            if data is not None and name not in zin.namelist():
                zout.writestr(name, data)
    return dst


def test_install_lists_pairs_size_source_and_checksums(store: ModelStore) -> None:
    pkg = store.install_file(HT_EN)
    assert pkg.package_id == "fixture_ht_en"
    assert pkg.pairs == (("ht", "en"),)
    assert pkg.serves("ht", "en")
    assert not pkg.serves("en", "ht")
    assert not pkg.multilingual
    assert pkg.model_dir == store.root / "fixture_ht_en" / "model"
    assert (pkg.model_dir / "model.bin").is_file()
    assert pkg.sp_model.is_file()
    assert pkg.source == str(HT_EN.resolve())
    assert pkg.archive_sha256 == MANIFEST["packages"]["fixture_ht_en"]["sha256"]
    assert len(pkg.sha256) == 64
    assert pkg.size_bytes > 0
    [listed] = store.list()
    assert listed == pkg
    store.verify(listed)


def test_every_fixture_package_installs(store: ModelStore) -> None:
    for name, entry in MANIFEST["packages"].items():
        pkg = store.install_file(FIXTURES / entry["file"])
        assert pkg.package_id == name
        assert [f"{s}-{t}" for s, t in pkg.pairs] == entry["directions"]
    assert [p.package_id for p in store.list()] == sorted(MANIFEST["packages"])


def test_multilingual_package_declares_prefixes_and_only_trained_pairs(store: ModelStore) -> None:
    pkg = store.install_file(MULTI)
    assert pkg.multilingual
    assert pkg.serves("ht", "sw")
    assert pkg.serves("sw", "ht")
    assert pkg.serves("fr", "sw")
    assert pkg.serves("sw", "fr")
    # Trained on none of these: routing must pivot through English instead.
    assert not pkg.serves("ht", "fr")
    assert not pkg.serves("fr", "ht")
    assert pkg.target_prefixes == {"ht": "hat_Latn", "fr": "fra_Latn", "sw": "swh_Latn"}
    assert pkg.source_prefixes == {"ht": "hat_Latn", "fr": "fra_Latn", "sw": "swh_Latn"}


def test_second_install_is_refused_unless_replace(store: ModelStore) -> None:
    store.install_file(HT_EN)
    with pytest.raises(PackageError, match="already installed"):
        store.install_file(HT_EN)
    again = store.install_file(HT_EN, replace=True)
    store.verify(again)
    assert visible_entries(store) == ["fixture_ht_en"]


def test_remove(store: ModelStore) -> None:
    store.install_file(HT_EN)
    store.remove("fixture_ht_en")
    assert store.list() == []
    assert visible_entries(store) == []
    with pytest.raises(MissingModel, match="daraja models list"):
        store.remove("fixture_ht_en")
    with pytest.raises(MissingModel):
        store.remove("../etc")


def test_not_a_zip_is_refused(store: ModelStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.argosmodel"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(PackageError, match="not a zip"):
        store.install_file(bad)
    assert store.list() == []


def test_truncated_archive_is_refused_and_leaves_nothing(
    store: ModelStore, tmp_path: Path
) -> None:
    data = HT_EN.read_bytes()
    bad = tmp_path / "truncated.argosmodel"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError):
        store.install_file(bad)
    assert store.list() == []
    assert visible_entries(store) == []


def test_corrupt_member_is_refused(store: ModelStore, tmp_path: Path) -> None:
    # Flip bytes inside model.bin's compressed data: the CRC check must catch it.
    data = bytearray(HT_EN.read_bytes())
    with zipfile.ZipFile(HT_EN) as zf:
        info = zf.getinfo("fixture_ht_en/model/model.bin")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 100
    for i in range(start, start + 64):
        data[i] ^= 0xFF
    bad = tmp_path / "corrupt.argosmodel"
    bad.write_bytes(bytes(data))
    with pytest.raises(PackageError):
        store.install_file(bad)
    assert visible_entries(store) == []


@pytest.mark.parametrize(
    "entry",
    ["../evil.txt", "fixture_ht_en/../../evil.txt", "/tmp/evil.txt", "fixture_ht_en\\..\\x"],
)
def test_path_traversal_is_refused(store: ModelStore, tmp_path: Path, entry: str) -> None:
    bad = rewrite(HT_EN, tmp_path / "evil.argosmodel", {entry: b"owned"})
    with pytest.raises(PackageError, match="unsafe path"):
        store.install_file(bad)
    assert not (tmp_path / "evil.txt").exists()
    assert visible_entries(store) == []


def test_symlink_entry_is_refused(store: ModelStore, tmp_path: Path) -> None:
    bad = tmp_path / "link.argosmodel"
    shutil.copy(HT_EN, bad)
    with zipfile.ZipFile(bad, "a") as zf:
        info = zipfile.ZipInfo("fixture_ht_en/model/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PackageError, match="symbolic link"):
        store.install_file(bad)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"fixture_ht_en/metadata.json": None}, "no metadata.json"),
        ({"fixture_ht_en/metadata.json": b"{not json"}, "metadata.json"),
        ({"fixture_ht_en/metadata.json": b'{"package_version": "1"}'}, "from_code"),
        (
            {"fixture_ht_en/metadata.json": b'{"from_code": "ht", "to_code": "e n"}'},
            "invalid language code",
        ),
        (
            {
                "fixture_ht_en/metadata.json": json.dumps(
                    {"from_codes": ["ht", "sw"], "to_codes": ["ht", "sw"]}
                ).encode()
            },
            "target_prefixes",
        ),
        ({"fixture_ht_en/model/model.bin": None}, "model.bin"),
        ({"fixture_ht_en/sentencepiece.model": None}, "sentencepiece.model"),
        ({"other_dir/README.md": b"x"}, "exactly one package directory"),
    ],
)
def test_invalid_package_is_refused(
    store: ModelStore, tmp_path: Path, edit: dict[str, bytes | None], message: str
) -> None:
    bad = rewrite(HT_EN, tmp_path / "bad.argosmodel", edit)
    with pytest.raises(PackageError, match=message):
        store.install_file(bad)
    assert store.list() == []
    assert visible_entries(store) == []


def test_an_archive_inflating_like_a_zip_bomb_is_refused_before_unpacking(
    store: ModelStore, tmp_path: Path
) -> None:
    # 64 MB of zeros deflate to about 64 KB: no model compresses a thousandfold.
    bomb = rewrite(HT_EN, tmp_path / "bomb.argosmodel", {"fixture_ht_en/model/model.bin": None})
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("fixture_ht_en/model/model.bin", bytes(64 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(PackageError, match="zip bomb"):
        store.install_file(bomb)
    assert store.list() == []
    assert visible_entries(store) == []


def test_many_small_entries_adding_up_to_a_bomb_are_refused(
    store: ModelStore, tmp_path: Path
) -> None:
    # Each entry stays under the size that may compress freely; the archive as a whole does not.
    extra: dict[str, bytes | None] = {
        f"fixture_ht_en/pad/{n}.json": bytes(1 << 20) for n in range(80)
    }
    bomb = rewrite(HT_EN, tmp_path / "pads.argosmodel", extra)
    with pytest.raises(PackageError, match="zip bomb"):
        store.install_file(bomb)
    assert visible_entries(store) == []


def test_an_entry_inflating_past_its_declared_size_is_refused(
    store: ModelStore, tmp_path: Path
) -> None:
    # The headers say model.bin holds 1,000 bytes; its data inflates to far more.
    liar = tmp_path / "liar.argosmodel"
    data = bytearray(HT_EN.read_bytes())
    with zipfile.ZipFile(HT_EN) as zf:
        info = zf.getinfo("fixture_ht_en/model/model.bin")
    struct.pack_into("<I", data, info.header_offset + 22, 1000)  # local header
    name = info.filename.encode()
    at = data.find(b"PK\x01\x02")
    while at != -1:  # central directory
        if data[at + 46 : at + 46 + len(name)] == name:
            struct.pack_into("<I", data, at + 24, 1000)
        at = data.find(b"PK\x01\x02", at + 4)
    liar.write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"corrupt archive|more than it declares"):
        store.install_file(liar)
    assert visible_entries(store) == []


def test_an_archive_larger_than_the_free_disk_is_refused(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import translation.store as store_module

    real = shutil.disk_usage
    monkeypatch.setattr(
        store_module.shutil, "disk_usage", lambda p: real(p)._replace(free=100_000)
    )
    with pytest.raises(PackageError, match="is free in"):
        store.install_file(HT_EN)
    monkeypatch.undo()
    assert visible_entries(store) == []


def test_duplicate_entries_are_refused(store: ModelStore, tmp_path: Path) -> None:
    twice = tmp_path / "twice.argosmodel"
    shutil.copy(HT_EN, twice)
    with zipfile.ZipFile(twice, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("fixture_ht_en/sentencepiece.model", b"other")
    with pytest.raises(PackageError, match="twice"):
        store.install_file(twice)
    assert visible_entries(store) == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("fixture_ht_en/sentencepiece.model", "does not load.*sentencepiece.model"),
        ("fixture_ht_en/model/model.bin", "does not load.*cannot load the model"),
    ],
)
def test_a_package_whose_files_do_not_load_is_not_installed(
    store: ModelStore, tmp_path: Path, broken: str, message: str
) -> None:
    bad = rewrite(HT_EN, tmp_path / "broken.argosmodel", {broken: b"not a model at all"})
    with pytest.raises(PackageError, match=message):
        store.install_file(bad)
    assert store.list() == []
    assert visible_entries(store) == []


def test_failure_at_the_last_step_leaves_no_half_installed_package(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if Path(str(dst)).parent == store.root:
            raise OSError("disk full")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        store.install_file(HT_EN)
    monkeypatch.undo()
    assert store.list() == []
    assert visible_entries(store) == []


def test_leftover_staging_dir_of_a_killed_install_is_never_listed(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    staging = store.root / ".staging-killed"
    with zipfile.ZipFile(HT_EN) as zf:
        zf.extractall(staging)
    assert store.list() == []
    assert store.problems() == {}


def test_checksum_mismatch_is_detected_at_load(store: ModelStore) -> None:
    pkg = store.install_file(HT_EN)
    model_bin = pkg.model_dir / "model.bin"
    data = bytearray(model_bin.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_bin.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="does not match the checksum"):
        store.verify(store.get("fixture_ht_en"))


def test_added_file_is_detected(store: ModelStore) -> None:
    pkg = store.install_file(HT_EN)
    (pkg.model_dir / "extra.bin").write_bytes(b"x")
    with pytest.raises(ModelIntegrityError):
        store.verify(pkg)


def test_package_copied_by_hand_is_listed_but_not_trusted(store: ModelStore) -> None:
    store.root.mkdir(parents=True)
    with zipfile.ZipFile(HT_EN) as zf:
        zf.extractall(store.root)
    [pkg] = store.list()
    assert pkg.sha256 == ""
    assert pkg.source.startswith("unknown")
    with pytest.raises(ModelIntegrityError, match="no checksum recorded"):
        store.verify(pkg)


def test_broken_directory_is_reported_not_raised(store: ModelStore) -> None:
    pkg = store.install_file(HT_EN)
    (store.root / "junk").mkdir()
    (store.root / "half").mkdir()
    (store.root / "half" / "metadata.json").write_text('{"from_code": "ht", "to_code": "en"}')
    assert [p.package_id for p in store.list()] == [pkg.package_id]
    problems = store.problems()
    assert set(problems) == {"junk", "half"}
    assert "metadata.json" in problems["junk"]
    assert "model.bin" in problems["half"]


def test_record_file_is_not_part_of_the_digest(store: ModelStore) -> None:
    pkg = store.install_file(HT_EN)
    record = json.loads((pkg.path / RECORD_NAME).read_text())
    assert record["tree_sha256"] == pkg.sha256
    assert record["archive_sha256"] == pkg.archive_sha256


def test_install_url_file_scheme(store: ModelStore) -> None:
    pkg = store.install_url(HT_EN.resolve().as_uri())
    assert pkg.source == HT_EN.resolve().as_uri()
    store.verify(pkg)
    assert visible_entries(store) == ["fixture_ht_en"]


def test_install_url_refuses_other_schemes(store: ModelStore) -> None:
    with pytest.raises(PackageError, match="http"):
        store.install_url("ftp://example.invalid/x.argosmodel")


def test_argostranslate_writes_nothing_into_home_and_translate_is_never_imported(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import sys; from pathlib import Path; from translation.store import ModelStore;"
        "s = ModelStore(Path(sys.argv[1])); s.install_file(Path(sys.argv[2]));"
        "print(len(s.list()), 'argostranslate.translate' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ARGOS_"))}
    env["HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "models"), str(HT_EN)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    # One package listed; the stanza/PyTorch-laden translate module was never imported.
    assert out.stdout.split() == ["1", "False"]
    assert list(home.iterdir()) == []


def test_store_on_missing_directory_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "absent")
    assert store.list() == []
    assert not (tmp_path / "absent").exists()


def test_zip_bytes_of_fixture_match_manifest() -> None:
    import hashlib

    for entry in MANIFEST["packages"].values():
        data = (FIXTURES / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
        assert len(data) == entry["size_bytes"]


def test_member_names_are_checked_before_extracting(store: ModelStore, tmp_path: Path) -> None:
    # An archive of many entries, one bad near the end: nothing may be written first.
    buf = io.BytesIO()
    with zipfile.ZipFile(HT_EN) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
        zout.writestr("fixture_ht_en/../../../late-evil.txt", b"x")
    bad = tmp_path / "late.argosmodel"
    bad.write_bytes(buf.getvalue())
    with pytest.raises(PackageError):
        store.install_file(bad)
    assert visible_entries(store) == []
