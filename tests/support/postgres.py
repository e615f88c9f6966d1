"""PostgreSQL for tests: one throwaway server per test session, one fresh database per test.

The session fixture `postgres_server` finds the PostgreSQL binaries (installing Debian's
`postgresql-15` with apt-get when they are missing and we are root), creates a cluster in a
temporary directory owned by the unprivileged `postgres` user (PostgreSQL refuses to run as
root), starts it on a free loopback port with fsync off, and stops and removes it at the end of
the session. A watchdog process does the same if pytest dies without tearing down, so no server
is ever left running. `fresh_database_url(request)` gives each test its own empty database.

Environment:
- `DARAJA_TEST_POSTGRES_URL`: an admin URL of an existing server to use instead (databases named
  `test_<pid>_<n>` are created in it and dropped after each test).
- `DARAJA_TEST_SKIP_POSTGRES=1`: skip the PostgreSQL half of the suite locally. Ignored under
  `CI=true`, where failing to start PostgreSQL fails the run.

`python -m tests.support.postgres install` installs the binaries (used by `.ci/run`);
`python -m tests.support.postgres bench` prints how long install (if needed) and start take.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV_URL = "DARAJA_TEST_POSTGRES_URL"
ENV_SKIP = "DARAJA_TEST_SKIP_POSTGRES"
SERVER_USER = "postgres"
# The Debian package the suite installs when no server binaries exist (bookworm ships 15).
PACKAGES = ("postgresql-15", "postgresql")

# Runs in its own session beside pytest: when pytest's end of the pipe closes (normal exit or a
# crash), stop the server if it runs and remove its directory. It looks a few times, in case
# pytest died while `pg_ctl start` was still bringing the server up. (Backstop: a postmaster
# whose data directory lock file vanished shuts itself down within a minute.)
_WATCHDOG = """
import os, shutil, subprocess, sys, time
sys.stdin.buffer.read()
cmd, root = sys.argv[1:-1], sys.argv[-1]
for _ in range(5):
    if os.path.exists(os.path.join(root, "data", "postmaster.pid")):
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if not os.path.exists(root):
        break
    time.sleep(1)
shutil.rmtree(root, ignore_errors=True)
"""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found, installed or started."""


Progress = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def in_ci() -> bool:
    """True under CI (`CI=true`), where PostgreSQL is mandatory."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_requested() -> bool:
    """True when the developer asked to skip PostgreSQL locally (never under CI)."""
    wanted = os.environ.get(ENV_SKIP, "").strip().lower() in {"1", "true", "yes"}
    return wanted and not in_ci()


def find_bindir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, preferring Debian's PostgreSQL 15."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]

    def version(bindir: Path) -> tuple[int, int]:
        name = bindir.parent.name
        return (name == "15", int(name) if name.isdigit() else 0)

    found.sort(key=version, reverse=True)
    for bindir in found:
        if (bindir / "pg_ctl").exists():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def _is_root() -> bool:
    return os.geteuid() == 0


def install_binaries(progress: Progress = _stderr) -> Path:
    """Install PostgreSQL from Debian's packages (root only) and return its bin directory."""
    if not _is_root():
        raise PostgresUnavailable(
            "PostgreSQL binaries not found and not running as root to install them: "
            "install the postgresql-15 package, or set DARAJA_TEST_POSTGRES_URL to an admin URL "
            f"of a running server, or set {ENV_SKIP}=1 to skip the PostgreSQL tests locally"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    progress("daraja tests: PostgreSQL not found; installing it with apt-get (once per machine)")
    apt = ["apt-get", "-q", "-o", "Dpkg::Use-Pty=0"]
    subprocess.run([*apt, "update"], check=True, env=env, stdout=2)
    for package in PACKAGES:
        done = subprocess.run(
            [*apt, "install", "-y", "--no-install-recommends", package],
            env=env,
            stdout=2,
            check=False,
        )
        if done.returncode == 0:
            break
    else:
        raise PostgresUnavailable(f"apt-get could not install any of {', '.join(PACKAGES)}")
    _stop_debian_clusters()
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL was installed but initdb/pg_ctl are not found")
    progress(f"daraja tests: PostgreSQL installed in {time.monotonic() - started:.1f} s")
    return bindir


def _stop_debian_clusters() -> None:
    # Debian's package creates and starts a `main` cluster on port 5432; the tests use their
    # own, so stop whatever the install started rather than leave a server running.
    if shutil.which("pg_lsclusters") is None:
        return
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].startswith("online"):
            subprocess.run(
                ["pg_ctlcluster", parts[0], parts[1], "stop"], capture_output=True, check=False
            )


def _server_account() -> pwd.struct_passwd:
    """The unprivileged `postgres` system user, created if missing."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _asyncpg_dsn(url: str) -> str:
    # asyncpg takes libpq-style URLs; SQLAlchemy's carry the driver after a `+`.
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def _run_admin(admin_url: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE) on the admin database.

    Call it from a thread with no running event loop (PostgresServer's worker thread): the
    caller may be a sync fixture inside pytest-asyncio's loop, whose loop must stay untouched.
    """

    async def go() -> None:
        import asyncpg

        conn = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=30)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(go())


@dataclass
class PostgresServer:
    """A PostgreSQL server for the session: admin URL plus per-test database management.

    CREATE DATABASE costs 0.1-0.5 s on a loaded 2-core machine, so the next test's database is
    created in a worker thread while the current test runs, and drops happen there too.
    """

    admin_url: str
    description: str
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _worker: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="pg-admin"
        )
    )
    # Databases made ahead of time, by kind: empty, or a copy of the migrated template.
    _ahead: dict[bool, concurrent.futures.Future[str]] = field(default_factory=dict)
    _pending: list[concurrent.futures.Future[None]] = field(default_factory=list)
    _template: str | None = None

    def database_url(self, name: str) -> str:
        """The SQLAlchemy (asyncpg) URL of database `name` on this server."""
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def _migrated_template(self) -> str:
        """The session's migrated database, made once (in the worker thread): test databases
        are copies of it (CREATE DATABASE ... TEMPLATE), not migrated one by one."""
        if self._template is None:
            from storage.db import Database

            name = f"template_{os.getpid()}"
            _run_admin(
                self.admin_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'
            )

            async def migrate() -> None:
                db = Database(self.database_url(name))
                try:
                    await db.upgrade()
                finally:
                    await db.dispose()

            asyncio.run(migrate())
            self._template = name
        return self._template

    def _create(self, migrated: bool = False) -> str:
        name = f"test_{os.getpid()}_{next(self._counter)}"
        template = f' TEMPLATE "{self._migrated_template()}"' if migrated else ""
        # A leftover of an earlier run with the same pid (external servers only) is replaced.
        _run_admin(
            self.admin_url,
            f'DROP DATABASE IF EXISTS "{name}"',
            f'CREATE DATABASE "{name}"{template}',
        )
        return name

    def create_database(self, *, migrated: bool = False) -> str:
        """A new database's name, empty or migrated (made ahead of time); prepares the next."""
        ahead = self._ahead.pop(migrated, None)
        if ahead is None:
            ahead = self._worker.submit(self._create, migrated)
        name = ahead.result(timeout=300)
        self._ahead[migrated] = self._worker.submit(self._create, migrated)
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test database in the background, disconnecting anyone still using it."""
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        self._pending.append(self._worker.submit(_run_admin, self.admin_url, statement))

    def close(self) -> None:
        """Finish background work and drop the database made ahead for a test that never came."""
        for ahead in self._ahead.values():
            with contextlib.suppress(Exception):
                self.drop_database(ahead.result(timeout=300))
        self._ahead.clear()
        if self._template is not None:
            self.drop_database(self._template)
            self._template = None
        for future in self._pending:
            with contextlib.suppress(Exception):
                future.result(timeout=300)
        self._pending.clear()
        self._worker.shutdown(wait=True)


@dataclass
class OwnedCluster:
    """A throwaway cluster this process started; `stop()` ends it and deletes its files."""

    bindir: Path
    root: Path
    port: int
    run_as: str | None
    watchdog: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.root / "server.log"

    @property
    def admin_url(self) -> str:
        """URL of the `postgres` database as the superuser (trust auth on loopback)."""
        return f"postgresql+asyncpg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    def command(self, *args: str | Path) -> list[str]:
        """A command line run as the server's user when we are root."""
        argv = [str(a) for a in args]
        if self.run_as is None:
            return argv
        return ["runuser", "-u", self.run_as, "--", *argv]

    def pg_ctl(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run pg_ctl on this cluster."""
        return subprocess.run(
            self.command(self.bindir / "pg_ctl", "-D", self.data, *args),
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.pg_ctl("-m", "immediate", "-w", "stop", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            if self.watchdog is not None and self.watchdog.stdin is not None:
                self.watchdog.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.watchdog.wait(timeout=30)


def start_cluster(bindir: Path) -> OwnedCluster:
    """initdb and start a throwaway cluster on a free loopback port; stop it on any failure."""
    run_as: str | None = None
    root = Path(tempfile.mkdtemp(prefix="daraja-pg-"))
    if _is_root():
        account = _server_account()
        run_as = account.pw_name
        os.chown(root, account.pw_uid, account.pw_gid)
    cluster = OwnedCluster(bindir=bindir, root=root, port=0, run_as=run_as)
    cluster.watchdog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WATCHDOG,
            *cluster.command(
                bindir / "pg_ctl", "-D", cluster.data, "-m", "immediate", "-w", "stop"
            ),
            str(root),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        initdb = subprocess.run(
            cluster.command(
                bindir / "initdb",
                "-D",
                cluster.data,
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--no-sync",
                "--no-locale",
                "--encoding=UTF8",
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {initdb.stderr.strip()[-2000:]}")
        # Trust only over loopback (and the cluster's private socket directory).
        (cluster.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        for attempt in range(5):
            cluster.port = _free_port()
            settings = {
                "listen_addresses": "'127.0.0.1'",
                "port": str(cluster.port),
                "unix_socket_directories": f"'{root}'",
                # Throwaway data: durability buys nothing, speed does.
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "200",
                "timezone": "'UTC'",
            }
            with (cluster.data / "postgresql.conf").open("a") as conf:
                conf.write("\n# daraja tests\n")
                conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
            started = cluster.pg_ctl(
                "-l", cluster.log_file, "-w", "-t", "60", "start", check=False
            )
            if started.returncode == 0:
                return cluster
            cluster.pg_ctl("-m", "immediate", "-w", "stop", check=False)
            if "could not bind" not in cluster.log_tail() or attempt == 4:
                raise PostgresUnavailable(
                    f"pg_ctl start failed: {started.stderr.strip()}\n{cluster.log_tail()}"
                )
    except BaseException:
        cluster.stop()
        raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _uncaptured(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let output reach the terminal: progress of a minute-long install must be seen."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        yield
        return
    with capture.global_and_fixture_disabled():
        yield


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server: external (DARAJA_TEST_POSTGRES_URL) or started here."""
    if skip_requested():
        pytest.skip(f"PostgreSQL skipped locally ({ENV_SKIP}=1)")
    external = os.environ.get(ENV_URL)
    if external:
        server = PostgresServer(admin_url=external, description=f"external server ({ENV_URL})")
        try:
            yield server
        finally:
            server.close()
        return
    started = time.monotonic()
    try:
        with _uncaptured(request):
            bindir = find_bindir() or install_binaries()
        cluster = start_cluster(bindir)
    except (PostgresUnavailable, OSError, subprocess.SubprocessError) as exc:
        hint = (
            "CI=true: PostgreSQL is required"
            if in_ci()
            else f"set {ENV_SKIP}=1 to skip PostgreSQL tests locally"
        )
        pytest.fail(f"could not start the PostgreSQL test server: {exc}\n({hint})", pytrace=False)
    with _uncaptured(request):
        _stderr(
            f"\ndaraja tests: PostgreSQL {bindir.parent.name} on 127.0.0.1:{cluster.port}, "
            f"ready in {time.monotonic() - started:.1f} s"
        )
    server = PostgresServer(admin_url=cluster.admin_url, description=f"owned {cluster.root}")
    try:
        yield server
    finally:
        try:
            server.close()
        finally:
            cluster.stop()


def fresh_database_url(request: pytest.FixtureRequest, *, migrated: bool = False) -> str:
    """A new database on the session's server (dropped after the test), or skip: empty, or
    `migrated` (a copy of the session's migrated template)."""
    if skip_requested():
        pytest.skip(f"PostgreSQL skipped locally ({ENV_SKIP}=1)")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(migrated=migrated)
    request.addfinalizer(lambda: server.drop_database(name))
    return server.database_url(name)


def _bench() -> int:
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    bindir = find_bindir()
    if bindir is None:
        bindir = install_binaries()
        timings["install"] = time.monotonic() - t0
    t1 = time.monotonic()
    cluster = start_cluster(bindir)
    timings["initdb+start"] = time.monotonic() - t1
    try:
        server = PostgresServer(admin_url=cluster.admin_url, description="bench")
        t2 = time.monotonic()
        names = [server._worker.submit(server._create).result() for _ in range(10)]
        timings["create database (mean of 10)"] = (time.monotonic() - t2) / 10
        t3 = time.monotonic()
        for name in names:
            server.drop_database(name)
        server.close()
        timings["drop database (mean of 10)"] = (time.monotonic() - t3) / 10
    finally:
        t4 = time.monotonic()
        cluster.stop()
        timings["stop+remove"] = time.monotonic() - t4
    print(f"PostgreSQL binaries: {bindir}")
    for name, seconds in timings.items():
        print(f"{name:>30}: {seconds:7.3f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`install`: make sure the binaries exist; `bench`: time install/start/create/stop."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.postgres")
    parser.add_argument("action", choices=["install", "bench"])
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            bindir = find_bindir()
            if bindir is None:
                bindir = install_binaries()
            print(f"PostgreSQL binaries: {bindir}")
            return 0
        return _bench()
    except PostgresUnavailable as exc:
        print(f"postgres: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
