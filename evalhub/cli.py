"""The ``evalhub`` command line. Subcommands live in ``evalhub.commands.*`` and load lazily,
so ``evalhub --help`` stays fast and never imports torch or ray."""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click.Command; one small module per family of commands.
COMMANDS: dict[str, str] = {
    "server": "evalhub.commands.server:server",
    "token": "evalhub.commands.server:token",
    "families": "evalhub.commands.registry:families",
    "models": "evalhub.commands.registry:models",
    "checkpoints": "evalhub.commands.registry:checkpoints",
    "tasks": "evalhub.commands.registry:tasks",
    "experiments": "evalhub.commands.registry:experiments",
    "runs": "evalhub.commands.registry:runs",
    "export": "evalhub.commands.registry:export",
    "register": "evalhub.commands.register:register",
    "run": "evalhub.commands.run:run",
    "demo": "evalhub.commands.run:demo",
    "cancel": "evalhub.commands.run:cancel",
    "attach": "evalhub.commands.run:attach",
    "resume": "evalhub.commands.run:resume",
    "ray": "evalhub.commands.cluster:ray_group",
    "schedule": "evalhub.commands.schedule:schedule",
    "tiny": "evalhub.commands.tiny:tiny",
    "serve-openai": "evalhub.commands.serve:serve_openai",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("evalhub.commands"):
                return None  # not built yet
            raise
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="evalhub")
def cli() -> None:
    """evalhub: register models, run experiments, compare results."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear line and a non-zero exit for an evalhub error, no traceback."""
    from evalhub.errors import EvalhubError

    try:
        code = cli.main(args=argv, standalone_mode=False)
        if isinstance(code, int):  # ctx.exit(n) in a command comes back here as n
            return code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except EvalhubError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
