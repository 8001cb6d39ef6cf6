"""A real IPython kernel (through jupyter_client) survives its experiments: an experiment cell, a
cancelled experiment and five experiments side by side all end as they should, and the kernel is
alive and answering at least 90 s after the last one ended (Ray's own limit for a lost cluster is 60 s:
a kernel whose local Ray was tied to a finished driver thread died within that minute)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _evalsetup import register_plugin, write_plugins
from _kernel import Kernel

pytestmark = [pytest.mark.ray, pytest.mark.slow]

AFTER_S = 95.0


@pytest.fixture
def kernel(hub: Any, tmp_path: Path) -> Any:
    from evalhub import tiny

    tiny.write_tasks(tmp_path, n=30)
    tiny.register_tasks(hub, tmp_path)
    plugins = write_plugins(tmp_path / "plugins")
    register_plugin(hub, plugins, "quick", "Slow", delay=0.02)
    register_plugin(hub, plugins, "slow", "Slow", delay=0.5)
    env = {
        **os.environ,
        "EVALHUB_URL": hub.url,
        "EVALHUB_PROJECT": hub.project,
        "RAY_AUTH_MODE": "disabled",
        "EVALHUB_RAY_DASHBOARD": "0",
        "EVALHUB_RAY_START_NICE": "-19",
    }
    k = Kernel(env, tmp_path)
    yield k
    k.close()


def _spec(name: str, model: str, limit: int = 6) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        models: [{{model: {model}}}]
        tasks: [arith-add]
        config: {{limit: {limit}, batch_size: 2, resources: {{cpus_per_worker: 0.25}}}}
        """
    )


def test_the_kernel_outlives_its_experiments(kernel: Any) -> None:
    kernel.run("import evalhub, time\nhub = evalhub.connect()\n%load_ext evalhub")
    out = kernel.run("%%evalhub experiment\n" + _spec("cell", "quick") + "\n", timeout=600)
    status = kernel.run("print(hub.experiments(limit=1)['status'][0])")
    assert status.strip() == "completed", out

    cancelled = kernel.run(
        textwrap.dedent(
            f"""\
            exp = hub.run_experiment({_spec("to-cancel", "slow", limit=30)!r}, wait=False, progress=False)
            run_id = int(exp.runs()["id"][0])
            deadline = time.monotonic() + 300
            while hub.run(run_id)["progress"]["done"] < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            exp.cancel().wait(timeout=180)
            print(exp.status(), hub.run(run_id)["status"])
            """
        )
    )
    assert cancelled.split() == ["cancelled", "cancelled"], cancelled

    side_by_side = kernel.run(
        textwrap.dedent(
            f"""\
            exps = [hub.run_experiment(spec, wait=False, progress=False)
                    for spec in {[_spec(f"side-{i}", "quick") for i in range(5)]!r}]
            for e in exps:
                e.wait(timeout=600)
            print(" ".join(e.status() for e in exps))
            """
        )
    )
    assert side_by_side.split() == ["completed"] * 5, side_by_side
    ended = time.monotonic()

    while time.monotonic() - ended < AFTER_S:
        assert kernel.manager.is_alive(), (
            f"the kernel died {time.monotonic() - ended:.0f}s after the last experiment"
        )
        time.sleep(5)
    answer = kernel.run("print('alive', 6 * 7)", timeout=60)
    assert answer.strip() == "alive 42"
    # the kernel's Ray is still there for the next experiment, and nothing else holds it
    assert (
        kernel.run(
            "from evalhub.execution.connection import ray_connection; print(ray_connection().users)"
        ).strip()
        == "0"
    )
