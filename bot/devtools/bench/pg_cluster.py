"""A throwaway PostgreSQL cluster for `daraja bench relay --backends …,postgresql`.

Started like the test suite's (tests/support/postgres.py): `initdb` into a temporary directory,
as the unprivileged `postgres` user when we are root (PostgreSQL refuses to run as root), on a
free loopback port, trust authentication over loopback only; stopped and deleted afterwards.
Unlike the test suite's it keeps PostgreSQL's durable defaults (fsync, synchronous_commit,
full_page_writes on): it is measured against SQLite with `synchronous=FULL`, and a tamper-evident
log that a power cut can roll back would not be a fair comparison.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"


class ClusterUnavailable(RuntimeError):
    """PostgreSQL binaries are missing or the cluster did not start."""


def find_bindir() -> Path | None:
    """The directory with `initdb` and `pg_ctl` (Debian's layout first, newest version)."""
    found = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in found:
        if (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


@dataclass
class BenchCluster:
    """A running throwaway cluster; `stop()` ends it and removes its files."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of its `postgres` database (the bench's empty database)."""
        return f"postgresql+asyncpg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def _command(self, *args: str | Path) -> list[str]:
        argv = [str(a) for a in args]
        return argv if self.run_as is None else ["runuser", "-u", self.run_as, "--", *argv]

    def _pg_ctl(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - PostgreSQL's own tool, our arguments
            self._command(self.bindir / "pg_ctl", "-D", self.root / "data", *args),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and delete its directory."""
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._pg_ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> BenchCluster:
    """initdb and start a cluster with durable settings; ClusterUnavailable if it cannot."""
    bindir = find_bindir()
    if bindir is None:
        raise ClusterUnavailable(
            "PostgreSQL binaries not found (install postgresql-15, or run "
            "`uv run python -m tests.support.postgres install`), or pass --database-url"
        )
    root = Path(tempfile.mkdtemp(prefix="daraja-bench-pg-"))
    run_as = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(SERVER_USER)
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise ClusterUnavailable(
                f"no `{SERVER_USER}` user to run PostgreSQL as (root is refused)"
            ) from None
        os.chown(root, account.pw_uid, account.pw_gid)
        run_as = account.pw_name
    cluster = BenchCluster(bindir=bindir, root=root, port=_free_port(), run_as=run_as)
    try:
        data = root / "data"
        initdb = subprocess.run(  # noqa: S603 - PostgreSQL's own tool, our arguments
            cluster._command(
                *(bindir / "initdb", "-D", data, "-U", SERVER_USER, "--auth=trust"),
                *("--no-locale", "--encoding=UTF8"),
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise ClusterUnavailable(f"initdb failed: {initdb.stderr.strip()[-1000:]}")
        (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# daraja bench relay (durability left at PostgreSQL's defaults)\n"
                f"listen_addresses = '127.0.0.1'\nport = {cluster.port}\n"
                f"unix_socket_directories = '{root}'\nmax_connections = 100\n"
                "timezone = 'UTC'\n"
            )
        started = cluster._pg_ctl("-l", root / "server.log", "-w", "-t", "60", "start")
        if started.returncode != 0:
            raise ClusterUnavailable(f"pg_ctl start failed: {started.stderr.strip()[-1000:]}")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
