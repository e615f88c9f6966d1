"""Small doors of the command line: each wrong input gets one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DARAJA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/daraja.db")
    monkeypatch.setenv("DARAJA_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def test_an_unknown_time_zone_is_refused_and_not_stored(
    deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "create-operation", "Olympus", "--timezone", "Mars/Olympus"]) == 1
    err = capsys.readouterr().err
    assert "'Mars/Olympus' is not a known time zone" in err
    assert "America/Port-au-Prince" in err
    assert main(["admin", "--json", "operations"]) == 0
    assert "Olympus" not in capsys.readouterr().out


def test_a_person_code_without_a_role_lists_the_roles(
    deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "create-operation", "Furcy"]) == 0
    assert main(["admin", "add-unit", "Furcy", "KE-3", "--side", "MSS", "--language", "en"]) == 0
    capsys.readouterr()
    assert main(["admin", "code", "person", "Furcy", "--unit", "KE-3"]) == 1
    err = capsys.readouterr().err
    assert "None" not in err
    assert "a person code needs a role: use one of officer, commander, auditor" in err
    assert main(["admin", "code", "person", "Furcy", "--unit", "KE-3", "--role", "chief"]) == 1
    assert "unknown role 'chief': use one of officer, commander, auditor" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize("code", ["xx", "zz", "hat"])
def test_convert_refuses_an_unknown_language(
    code: str, deployment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.engines.bundled import BUNDLED_DIR

    archive = BUNDLED_DIR / "opus-mt-fixture-ht-en.zip"
    args = ["models", "convert-opus-mt", str(archive), "--from", code, "--to", "en"]
    assert main([*args, "--out", str(deployment / "out.argosmodel")]) == 1
    err = capsys.readouterr().err
    assert f"{code!r} is not a known language code" in err
    assert "ht, fr, en, sw" in err
    assert not (deployment / "out.argosmodel").exists()


class _ClosedPipe:
    """stdout whose reader went away (`daraja models list --json | head`)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_quietly(
    deployment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    assert main(["models", "list", "--json"]) == 141  # 128 + SIGPIPE, as a shell reports it
    assert capsys.readouterr().err == ""


def test_sandbox_help_lists_the_control_operations(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--help"])
    out = capsys.readouterr().out
    for line in (
        "  create_user first_name [id]",
        "  post chat_id user_id [kind] [text]",
        "  reset",
    ):
        assert line in out
    assert "POST a JSON object of arguments" in out


async def test_an_unknown_control_operation_lists_the_known_ones() -> None:
    from bot.devtools.sandbox import Sandbox, SandboxClient
    from bot.devtools.sandbox.client import SandboxError

    async with Sandbox() as sb:
        client = SandboxClient.connect(sb.url)
        try:
            with pytest.raises(SandboxError) as err:
                await client._call("create_person", first_name="Rose")
        finally:
            await client.close()
    assert "unknown control operation 'create_person'" in str(err.value)
    assert "create_user" in str(err.value)
    assert "inject_fault" in str(err.value)
