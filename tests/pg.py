"""A throwaway PostgreSQL for the tests: one private cluster per test session, one fresh
database per test.

``pg_url`` (session) yields the URL of a server the tests may create databases on:

- ``NEWSWATCH_TEST_PG_URL`` set: that server, as is (nothing is started or stopped);
- otherwise PostgreSQL's ``initdb`` and ``pg_ctl`` start a cluster in a fresh directory under
  /tmp, listening on a unix socket only (no TCP port is opened), stopped and removed at the end.
  ``initdb`` refuses to run as root, so as root the cluster runs as the ``postgres`` user, in a
  directory that user owns (pytest's own temporary directories are private to root).

Where neither is available the PostgreSQL tests skip with a message saying how to enable them,
except under ``CI=true``: CI must run them, so there a missing PostgreSQL fails.

:func:`local_cluster` is that start and stop on its own (no pytest), so benchmarks can run the
same cluster, and keep it between runs.

``pg_database`` (function) creates a database with a unique name on that server, yields its URL
and drops it afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

__all__ = [
    "ClusterError", "admin", "database_url", "local_cluster", "pg_database", "pg_url",
    "start_seconds",
]

ENV_URL = "NEWSWATCH_TEST_PG_URL"
HOW_TO_ENABLE = (
    "PostgreSQL tests need PostgreSQL 15's initdb and pg_ctl on PATH (e.g. apt-get install "
    f"postgresql-15 and add its bin directory to PATH), or {ENV_URL}=postgresql://... naming a "
    "server where the tests may create and drop databases"
)

# Seconds the session cluster took to initialise and start, and to stop (for the report).
start_seconds: dict[str, float] = {}


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI the PostgreSQL tests must run. {HOW_TO_ENABLE}",
                    pytrace=False)
    pytest.skip(f"{reason}. {HOW_TO_ENABLE}")


def _free_port() -> int:
    # The port only names the socket file (.s.PGSQL.<port>); a free TCP port avoids clashing
    # with a server of the same port in the same socket directory.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClusterError(RuntimeError):
    """A local cluster could not be started; ``missing``: PostgreSQL (or the user to run it
    as) is not installed here, rather than installed and failing."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _run(cmd: list[str], *, as_user: str | None, what: str) -> None:
    if as_user is not None:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise ClusterError(f"{what} failed (exit {done.returncode}): {tail}")


# Throwaway settings: a crash of such a cluster loses nothing anyone needs.
FAST_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                 "-c max_connections=200")


@contextmanager
def local_cluster(base: Path, *, settings: str = FAST_SETTINGS, keep: bool = False,
                  stop_mode: str = "immediate",
                  timings: dict[str, float] | None = None) -> Iterator[str]:
    """A PostgreSQL cluster in ``base`` (``data/``, ``sock/``, ``log``), listening on a unix
    socket only; yields the URL of its ``postgres`` database and stops it on exit.

    ``base/data`` is created by ``initdb`` unless it already holds a cluster (``keep``: one a
    previous run left), so a kept cluster's databases survive between runs. As root the server
    runs as the ``postgres`` user, which then owns ``base``. Without ``keep``, ``base`` is
    removed at the end. ``settings``: extra server options (``-c name=value``). ``timings``
    gets the seconds to start (initdb included) and to stop. ClusterError if it cannot start.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ClusterError("initdb and pg_ctl are not on PATH", missing=True)
    as_root = os.geteuid() == 0
    user = "postgres" if as_root else None
    if as_root:
        try:
            import pwd

            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterError("running as root and there is no postgres user to run the "
                               "server as", missing=True) from None
    data, sock = base / "data", base / "sock"
    sock.mkdir(parents=True, exist_ok=True)
    if as_root:
        for path in (base, sock):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    started = time.monotonic()
    try:
        if not (data / "PG_VERSION").exists():
            _run([initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C"], as_user=user, what="initdb")
        options = f"-k {sock} -p {port} -c listen_addresses='' {settings}"
        _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
             as_user=user, what="pg_ctl start")
        if timings is not None:
            timings["start"] = time.monotonic() - started
        yield f"postgresql://postgres@/postgres?{urlencode({'host': str(sock), 'port': port})}"
    finally:
        stopping = time.monotonic()
        if (data / "postmaster.pid").exists():
            subprocess.run(
                (["runuser", "-u", "postgres", "--"] if as_root else [])
                + [pg_ctl, "-D", str(data), "-m", stop_mode, "-w", "stop"],
                capture_output=True, timeout=60, check=False)
        if timings is not None:
            timings["stop"] = time.monotonic() - stopping
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def database_url(server: str, database: str) -> str:
    """``server``'s URL naming ``database`` instead (the query string, e.g. ``host=/sock``,
    is kept)."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a PostgreSQL server (its ``postgres`` database) the tests may use."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        _missing("initdb and pg_ctl are not on PATH")
    base = Path(tempfile.mkdtemp(prefix="newswatch-pg-"))
    try:
        with local_cluster(base, timings=start_seconds) as url:
            yield url
    except ClusterError as exc:
        shutil.rmtree(base, ignore_errors=True)
        if exc.missing:
            _missing(str(exc))
        pytest.fail(str(exc), pytrace=False)


def admin(server: str, sql: str) -> None:
    """Run one statement on the server's maintenance database, from a thread of its own: the
    fixtures that need a database may be set up while a test's event loop runs."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(server, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)


@pytest.fixture
def pg_database(pg_url: str) -> Iterator[str]:
    """A new, empty database on the session's server; dropped after the test."""
    name = f"nw_test_{uuid.uuid4().hex[:16]}"
    admin(pg_url, f'CREATE DATABASE "{name}"')
    try:
        yield database_url(pg_url, name)
    finally:
        # FORCE: a store a failed test left open must not keep the database alive.
        admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
