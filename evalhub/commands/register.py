"""``evalhub register PATH``: register the model of a repo holding ``ai_eval_config.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evalhub.commands.registry import _hub, connection_options


@click.command("register")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Validate the config only; register nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was registered as JSON.")
@connection_options
def register(
    path: Path, check: bool, as_json: bool, url: str | None, token: str | None, project: str | None
) -> None:
    """Register PATH's family, model and checkpoints (metadata only; weights stay where they are)."""
    from evalhub.plugin import load_config, register_repo

    if check:
        cfg = load_config(path)
        click.echo(f"{cfg.path}: ok ({cfg.model}, runtime {cfg.runtime}, {len(cfg.checkpoints)} checkpoints)")
        return
    hub = _hub(url, token, project)
    try:
        result = register_repo(hub, path)
    finally:
        hub.close()
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
        return
    model = result["model"]
    click.echo(f"model {model['name']} (family {result['family']['name']}, runtime {model['runtime']})")
    for cp in result["checkpoints"]:
        click.echo(f"  checkpoint {cp['name']}: {cp['uri']}")
