"""The argument grammar of ``%evalhub``: argparse whose errors are one-line ``UsageError``s."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from IPython.core.error import UsageError

from evalhub.protocol import STATUSES

FILTERS = ("all", "disagree", "any_wrong", "all_wrong")


class HelpShown(Exception):
    """``-h`` printed the help: nothing else to do."""


class MagicParser(argparse.ArgumentParser):
    """An ArgumentParser that raises ``UsageError`` (one line, no traceback) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        usage = " ".join(self.format_usage().split())
        usage = usage.removeprefix("usage: ")
        raise UsageError(f"{self.prog}: {message}. Usage: {usage}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip())
        raise HelpShown


def build_parser() -> MagicParser:
    """The parser of every ``%evalhub`` subcommand."""
    p = MagicParser(prog="%evalhub", description="evalhub in a notebook: %evalhub <command> [options]")
    sub = p.add_subparsers(dest="command", metavar="command", parser_class=MagicParser)

    def cmd(name: str, help: str) -> MagicParser:
        parser: MagicParser = sub.add_parser(name, help=help, description=help)
        return parser

    c = cmd("connect", "connect to a tracking server (no URL: the embedded one)")
    c.add_argument("url", nargs="?", help="http://host:port of a shared server")
    c.add_argument("--token", help="a project token (ehk_...)")
    c.add_argument("--project", help="project name (auth off)")

    c = cmd("families", "list model families")
    c.add_argument("--modality")
    c = cmd("models", "list registered models")
    c.add_argument("--family")
    c.add_argument("--runtime")
    c = cmd("checkpoints", "list checkpoints (of one model)")
    c.add_argument("model", nargs="?")
    c = cmd("tasks", "list tasks")
    c.add_argument("--type")
    cmd("benchmarks", "list benchmarks")
    cmd("registry", "browse the registry (widget)")

    c = cmd("experiments", "list experiments, newest first")
    c.add_argument("--status", choices=STATUSES)
    c.add_argument("--limit", type=_positive, default=100)
    c = cmd("runs", "list runs (of one experiment)")
    c.add_argument("experiment", nargs="?", type=_id, help="experiment id")
    c.add_argument("--status", choices=STATUSES)
    c.add_argument("--type", choices=("training", "inference", "offline_eval"))
    c.add_argument("--model")
    c.add_argument("--task")

    c = cmd("show", "live monitor of an experiment's runs (or one run's details with --run)")
    c.add_argument("experiment", nargs="?", type=_id, help="experiment id")
    c.add_argument("--run", type=_id, help="a run id instead")
    c = cmd("compare", "comparison table of an experiment (widget)")
    c.add_argument("experiment", type=_id, help="experiment id")
    c.add_argument("--baseline", default="", help="the configuration label to compare against")
    c = cmd("page", "an experiment's page: table, curves, diff, slices, judges, queues (widget)")
    c.add_argument("experiment", type=_id, help="experiment id")
    c.add_argument("--baseline", default="", help="the configuration label to compare against")
    c.add_argument("--by", help="slice by this: a document column, prompt_length, answer_length, subtask")
    c.add_argument("--metric", help="the metric the curves draw (default: the first)")
    c = cmd("diff", "per-sample output diff of an experiment (widget)")
    c.add_argument("experiment", type=_id, help="experiment id")
    c.add_argument("--task")
    c.add_argument("--filter", choices=FILTERS, default="all")
    c.add_argument("--search", default="", help="text to find in prompts, references or outputs")
    c.add_argument("--limit", type=_positive, default=20, help="samples per page")
    c = cmd("curves", "curves of series of runs, or of a metric against checkpoint step")
    c.add_argument("runs", nargs="*", type=_id, help="run ids")
    c.add_argument("--key", action="append", default=[], help="series key (repeatable), default loss")
    c.add_argument("--experiment", type=_id, help="an experiment: plot --key (a metric) against step")
    c.add_argument("--max-points", type=_positive, default=1000)
    c = cmd("cancel", "cancel an experiment's queued and running runs (or one run)")
    c.add_argument("experiment", nargs="?", type=_id)
    c.add_argument("--run", type=_id, help="a run id instead")

    c = cmd("experiment", "submit an experiment (use the cell form: %%%%evalhub experiment)")
    c.add_argument("--name", help="override the spec's name")
    c.add_argument("--no-wait", action="store_true", help="return at once; the monitor stays live")
    c.add_argument("--file", help="a spec YAML file (line form)")

    r = cmd("register", "register a repo, family, model, checkpoint, task or benchmark")
    rs = r.add_subparsers(dest="kind", metavar="kind", parser_class=MagicParser)
    rs.required = True
    x = rs.add_parser("repo", help="a model repo holding ai_eval_config.yaml")
    x.add_argument("path")
    x = rs.add_parser("family", help="a model family")
    x.add_argument("name")
    x.add_argument("--modality", default="llm")
    x.add_argument("--description", default="")
    x = rs.add_parser("model", help="a model implementation")
    x.add_argument("name")
    x.add_argument("--family", required=True)
    x.add_argument("--runtime", required=True, choices=("hf", "vllm", "openai", "python"))
    x.add_argument("--adapter", help="module:Class of a python adapter")
    x.add_argument("--code-uri")
    x = rs.add_parser("checkpoint", help="a checkpoint of a model (metadata only)")
    x.add_argument("model")
    x.add_argument("name")
    x.add_argument("--uri", required=True)
    x.add_argument("--step", type=int)
    x.add_argument("--epoch", type=float)
    x = rs.add_parser("task", help="a task from a local JSONL/CSV file, or one lm-eval knows")
    x.add_argument("name")
    x.add_argument("--data", help="local JSONL or CSV file")
    x.add_argument("--prompt", help="prompt template, e.g. '{{question}}'")
    x.add_argument("--target", help="target template, e.g. '{{answer}}'")
    x.add_argument("--output-type", default="generate_until")
    x.add_argument("--metrics", nargs="+", default=["exact_match"])
    x.add_argument("--lm-eval-task", help="a task lm-eval knows (gsm8k, mmlu, ...)")
    x = rs.add_parser("benchmark", help="a named set of tasks")
    x.add_argument("name")
    x.add_argument("--tasks", nargs="+", required=True)

    c = cmd("help", "this help, or one command's")
    c.add_argument("topic", nargs="?")
    return p


def _id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer id, got {text!r}")
    return int(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse(parser: MagicParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; ``HelpShown`` after ``-h``; ``UsageError`` on a mistake."""
    args = parser.parse_args(argv)
    return args


def subparser(parser: MagicParser, name: str) -> Any:
    """The parser of one subcommand (for ``%evalhub help <name>``), or None."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None
