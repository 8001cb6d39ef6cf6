"""``%evalhub`` and ``%%evalhub experiment``: evalhub in a notebook.

>>> %load_ext evalhub
>>> %config EvalhubMagics.url = "http://evalhub:8765"     # default: the embedded server
>>> %evalhub models
>>> %evalhub compare 3 --baseline step-100

Loading the extension imports neither torch, ray nor lm-eval; the Hub connects on first use.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Unicode, observe

from evalhub._magic_args import HelpShown, build_parser, subparser
from evalhub.errors import EvalhubError

if TYPE_CHECKING:
    from evalhub.hub import Hub


_EXPAND = re.compile(r"(\{\{.*?\}\})|\{([^{}]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@magics_class
class EvalhubMagics(Magics):
    """The ``%evalhub`` line magic and the ``%%evalhub experiment`` cell magic."""

    url = Unicode("", help="URL of the tracking server; empty: EVALHUB_URL, else the embedded server").tag(
        config=True
    )
    token = Unicode("", help="project token; empty: EVALHUB_TOKEN").tag(config=True)
    project = Unicode("", help="project (servers without auth); empty: EVALHUB_PROJECT or 'default'").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._hub: Hub | None = None
        self._parser = build_parser()

    @observe("url", "token", "project")
    def _forget_hub(self, change: dict[str, Any]) -> None:
        self._hub = None

    @property
    def hub(self) -> Hub:
        """The Hub the magics talk to (connected on first use)."""
        if self._hub is None:
            from evalhub.hub import connect

            self._hub = connect(
                self.url or None, token=self.token or None, project=self.project or None
            )
        return self._hub

    @hub.setter
    def hub(self, value: Hub) -> None:
        self._hub = value

    @no_var_expand
    @line_cell_magic
    def evalhub(self, line: str, cell: str | None = None) -> Any:
        """evalhub in a notebook. ``%evalhub help`` lists the commands.

        Line form: ``%evalhub <command> [options]``, e.g. ``%evalhub runs 3 --status failed``.
        Cell form: ``%%evalhub experiment [--name N] [--no-wait]`` with the experiment YAML as body.
        """
        line = self._expand(line)
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%evalhub: cannot split the arguments ({exc})") from None
        if not argv:
            argv = ["help"]
        try:
            args = self._parser.parse_args(argv)
        except HelpShown:
            return None
        try:
            return self._dispatch(args, cell)
        except EvalhubError as exc:
            raise UsageError(f"%evalhub {args.command}: {exc}") from None

    def _expand(self, line: str) -> str:
        """``{expr}`` and ``$name`` take the value from the user's namespace, as in other magics;
        ``{{...}}`` (a prompt template) passes through unchanged."""
        shell = self.shell
        if shell is None:
            return line

        def value(match: re.Match[str]) -> str:
            if match.group(1) is not None:
                return match.group(1)  # {{template}}
            expr = match.group(2) or match.group(3)
            try:
                return str(shell.ev(expr))  # type: ignore[no-untyped-call]
            except Exception as exc:
                raise UsageError(f"%evalhub: cannot evaluate {match.group(0)!r}: {exc}") from None

        return _EXPAND.sub(value, line)

    def _dispatch(self, args: Any, cell: str | None) -> Any:
        command = args.command
        if command == "help":
            return self._help(args.topic)
        if command == "experiment":
            return self._experiment(args, cell)
        if cell is not None:
            raise UsageError(
                f"%%evalhub takes a cell only as 'experiment' (%%evalhub experiment), not {command!r}"
            )
        if command == "connect":
            with self.hold_trait_notifications():
                if args.url:
                    self.url = args.url
                if args.token:
                    self.token = args.token
                if args.project:
                    self.project = args.project
            self._hub = None
        from evalhub._magic_commands import COMMANDS

        return COMMANDS[command](self.hub, args)

    def _experiment(self, args: Any, cell: str | None) -> Any:
        from evalhub._magic_experiment import submit

        if cell is None:
            if not args.file:
                raise UsageError(
                    "%evalhub experiment: use the cell form (%%evalhub experiment, YAML below) or --file SPEC.yaml"
                )
            try:
                with open(args.file, encoding="utf-8") as fh:
                    cell = fh.read()
            except OSError as exc:
                raise UsageError(f"%evalhub experiment: cannot read {args.file}: {exc.strerror}") from None
        from IPython.display import display

        return submit(self.hub, cell, name=args.name, wait=not args.no_wait, display=display)

    def _help(self, topic: str | None) -> None:
        if topic:
            parser = subparser(self._parser, topic)
            if parser is None:
                raise UsageError(f"%evalhub help: no command {topic!r}; %evalhub help lists them")
            parser.print_help()
        else:
            self._parser.print_help()
            print("\ncell form: %%evalhub experiment [--name N] [--no-wait]  (body: the experiment YAML)")


def load_ipython_extension(ipython: Any) -> None:
    """Register :class:`EvalhubMagics` (``%load_ext evalhub`` calls this)."""
    ipython.register_magics(EvalhubMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to undo beyond IPython's own bookkeeping."""
