"""``evalhub server`` (run the tracking server) and ``evalhub token create`` (a project token)."""

from __future__ import annotations

import os
from typing import Any

import click

from evalhub.errors import Conflict, EvalhubError


def _server_package() -> Any:
    try:
        import evalhub_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EvalhubError(
            f"the tracking server is not installed ({exc}): pip install 'evalhub[server]'"
        ) from None
    return evalhub_server


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    default=None,
    help="SQLAlchemy URL: sqlite:///path or mysql://user:pw@host/db (MariaDB's connector where "
    "installed, else pymysql; default: SQLite under EVALHUB_HOME)",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port", type=int, default=8765, show_default=True, help="0 picks a free port (see --ready-file)"
)
@click.option("--artifacts", default=None, help="artifact folder or object-store URL, e.g. s3://bucket/prefix (default: next to the SQLite file)")
@click.option("--auth", type=click.Choice(["none", "token"]), default="none", show_default=True)
@click.option(
    "--admin-token", default=None, envvar="EVALHUB_ADMIN_TOKEN", help="admin token (or EVALHUB_ADMIN_TOKEN)"
)
@click.option("--max-request-bytes", type=int, default=None, help="largest request body (default 32 MiB)")
@click.option(
    "--max-text-bytes", type=int, default=None, help="largest text field of a request (default 2 MiB)"
)
@click.option(
    "--lease",
    type=float,
    default=None,
    help="seconds a running attempt may stay silent before it is re-queued or failed (default 60)",
)
@click.option("--ready-file", default=None, help='write {"url", "pid"} here once accepting connections')
@click.option("--log-level", default="warning", show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="server processes on one port (several suit MySQL/MariaDB)",
)
def server(
    db: str | None,
    host: str,
    port: int,
    artifacts: str | None,
    auth: str,
    admin_token: str | None,
    max_request_bytes: int | None,
    max_text_bytes: int | None,
    lease: float | None,
    ready_file: str | None,
    log_level: str,
    workers: int,
) -> None:
    """Run the tracking server (upgrades the database schema first)."""
    pkg = _server_package()
    argv = ["--host", host, "--port", str(port), "--auth", auth, "--log-level", log_level]
    for flag, value in (
        ("--db", db),
        ("--artifacts", artifacts),
        ("--admin-token", admin_token),
        ("--max-request-bytes", max_request_bytes),
        ("--max-text-bytes", max_text_bytes),
        ("--lease", lease),
        ("--ready-file", ready_file),
    ):
        if value is not None:
            argv += [flag, str(value)]
    try:
        settings = pkg.parse_args(argv)
    except SystemExit as exc:
        raise click.UsageError("invalid server options (see above)") from exc
    pkg.serve(settings, workers=workers)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def token() -> None:
    """Manage project tokens of a server running with --auth token."""


@token.command("create")
@click.argument("project")
@click.option(
    "--name", default="default", show_default=True, help="a name for the token (unique per project)"
)
@click.option("--url", default=None, envvar="EVALHUB_URL", help="server URL (or EVALHUB_URL)")
@click.option(
    "--admin-token", default=None, envvar="EVALHUB_ADMIN_TOKEN", help="admin token (or EVALHUB_ADMIN_TOKEN)"
)
@click.option("--db", default=None, help="write straight into this database instead of asking a server")
def create(project: str, name: str, url: str | None, admin_token: str | None, db: str | None) -> None:
    """Create PROJECT if needed and print a new token for it (shown once)."""
    if db:
        value = _create_in_db(db, project, name)
    else:
        if not url:
            raise click.UsageError("give --url (or EVALHUB_URL), or --db to write into the database directly")
        from evalhub.client import Client

        with Client(
            url, token=admin_token or os.environ.get("EVALHUB_ADMIN_TOKEN"), project=project
        ) as client:
            try:
                client.post("/api/projects", {"name": project})
            except Conflict:
                pass
            value = client.post(f"/api/projects/{project}/tokens", {"name": name})["token"]
    click.echo(value)


def _create_in_db(db_url: str, project: str, name: str) -> str:
    from evalhub_server.access import AccessStore
    from evalhub_server.db import Database
    from evalhub_server.errors import ApiError
    from evalhub_server.migrate import upgrade

    database = Database(db_url)
    try:
        upgrade(database.engine)
        access = AccessStore(database)
        access.project_id(project, create=True)
        try:
            return str(access.create_token(project, name)["token"])
        except ApiError as exc:
            raise EvalhubError(exc.message) from None
    finally:
        database.dispose()
