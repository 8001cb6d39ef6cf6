"""A real IPython kernel started through jupyter_client, as JupyterLab starts one."""

from __future__ import annotations

import queue
import time
from pathlib import Path


class Kernel:
    """A kernel started the way JupyterLab starts one, with a way to run a cell and read its output."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd))

    def run(self, code: str, timeout: float = 600) -> str:
        msg_id = self.client.execute(code)
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no answer from the kernel within {timeout}s; so far: {''.join(out)}"
                ) from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "execute_result":
                out.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                raise AssertionError(f"{content['ename']}: {content['evalue']}\n{''.join(out)}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def restart(self) -> None:
        """Restart the kernel as JupyterLab's "Restart Kernel" does (the old process is killed)."""
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=120)
