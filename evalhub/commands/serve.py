"""``evalhub serve-openai CHECKPOINT``: an OpenAI-compatible endpoint over a checkpoint."""

from __future__ import annotations

import click


@click.command("serve-openai")
@click.argument("checkpoint")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--runtime", default="hf", show_default=True, type=click.Choice(["hf", "vllm", "python"]))
@click.option("--name", "model_name", default=None, help="Model id served (default: the folder name).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--adapter", default=None, help="module:Class, for --runtime python.")
@click.option("--code", "code_uri", default=None, help="Repo folder of the adapter, for --runtime python.")
def serve_openai(
    checkpoint: str,
    port: int,
    host: str,
    runtime: str,
    model_name: str | None,
    batch_size: int,
    adapter: str | None,
    code_uri: str | None,
) -> None:
    """Serve CHECKPOINT (a weights URI or folder) at http://HOST:PORT/v1 (completions, chat, models)."""
    from pathlib import PurePosixPath

    from evalhub.adapters import CheckpointRef, load_adapter
    from evalhub.serve_openai import serve

    name = model_name or PurePosixPath(checkpoint.rstrip("/")).name or "model"
    ref = CheckpointRef(
        model=name,
        name=name,
        uri=checkpoint,
        runtime=runtime,
        adapter=adapter,
        code_uri=code_uri,
        params={"batch_size": batch_size},
    )
    loaded = load_adapter(ref)
    click.echo(f"serving {name} ({runtime}) at http://{host}:{port}/v1", err=True)
    try:
        serve(loaded, name, host=host, port=port)
    finally:
        loaded.close()
