"""The ``python`` runtime: a user's class from a code repo (see ``evalhub.plugin``).

The class named by ``adapter`` (``module:Class``) is imported from ``code_uri`` and built as
``Class(uri, params)``, where ``uri`` is the checkpoint's weights resolved to a local path. It answers
``generate(prompts, params) -> list[str]`` (``params`` is a plain dict of the generation parameters) and,
optionally, ``loglikelihood(requests) -> list[(float, bool)]`` and ``loglikelihood_rolling(texts)``.
Its answers are checked: a wrong count or type is an ``AdapterError`` naming the plugin.

A text-to-image plugin answers ``generate_images(prompts, settings) -> list[image]`` instead (PIL images or
H x W x 3 uint8 arrays; ``settings`` holds steps, guidance, width, height, negative_prompt and one seed
per prompt under ``seeds``); the ``t2i`` engine scores it like a diffusers pipeline.

Chats (``config.apply_chat_template``): a plugin that sets ``takes_messages = True`` gets them as lists of
``{"role", "content"}`` messages in ``generate``; one with ``apply_chat_template(messages,
add_generation_prompt)`` renders them to a prompt itself (likelihood tasks then work too); one with
neither is refused. A generation dict may carry ``tokens_in``/``tokens_out``; left out, they stay unknown.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalhub.adapters._text import cut_at_stop
from evalhub.adapters.base import Adapter, CheckpointRef, Generation, GenerationParams, Message, _check_count
from evalhub.errors import AdapterError


def import_entrypoint(entrypoint: str, code_uri: str | None) -> Any:
    """The object ``module:attr`` imported with ``code_uri`` first on ``sys.path``."""
    module_name, sep, attr = entrypoint.partition(":")
    if not sep or not module_name or not attr:
        raise AdapterError(f"adapter {entrypoint!r} is not of the form module:Class")
    if code_uri:
        root = str(Path(code_uri).expanduser().resolve())
        if not Path(root).is_dir():
            raise AdapterError(f"the code of adapter {entrypoint} is not at {code_uri} (no such folder)")
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
        loaded = sys.modules.get(module_name.split(".")[0])
        origin = getattr(loaded, "__file__", None) if loaded is not None else None
        if origin and not str(Path(origin).resolve()).startswith(root):
            # a module of the same name from another repo: import this repo's own
            for name in [
                m
                for m in sys.modules
                if m == module_name.split(".")[0] or m.startswith(module_name.split(".")[0] + ".")
            ]:
                del sys.modules[name]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AdapterError(
            f"cannot import {module_name} for adapter {entrypoint} (from {code_uri}): {exc}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AdapterError(f"module {module_name} has no {attr} (adapter {entrypoint})") from None


class PythonAdapter(Adapter):
    """Wraps a user's plugin object; strings become ``Generation``s, contract breaks become errors."""

    runtime = "python"

    device = "cpu"  # a plugin's images are the plugin's business; evalhub measures around the call
    pipeline = None

    def __init__(self) -> None:
        super().__init__()
        self.plugin: Any = None
        self.entrypoint = ""

    @property
    def makes_images(self) -> bool:
        """Whether the plugin exposes ``generate_images(prompts, params)`` (a text-to-image model)."""
        return callable(getattr(self.plugin, "generate_images", None))

    def resolve(self, params: Any) -> Any:
        """Image settings with an unset size filled from the plugin's ``width``/``height`` (default 64)."""
        from dataclasses import replace

        from evalhub.adapters.diffusers import ImageParams

        p = params if params is not None else ImageParams()
        return replace(p, width=p.width or int(getattr(self.plugin, "width", 64)),
                       height=p.height or int(getattr(self.plugin, "height", 64)))  # fmt: skip

    def generate_images(self, prompts: Sequence[str], params: Any = None) -> list[Any]:
        """One image per prompt from the plugin's ``generate_images(prompts, params)`` (PIL images or
        H x W x 3 uint8 arrays, in order), with a seed per prompt in ``params["seeds"]``; timed per call."""
        import time

        import numpy as np

        from evalhub.adapters.diffusers import GeneratedImage

        if not self.makes_images:
            raise AdapterError(f"plugin {self.entrypoint} has no generate_images(prompts, params) method")
        p = self.resolve(params)
        seeds = [p.seed_of(i) for i in range(len(prompts))]
        settings = {"steps": p.steps, "guidance": p.guidance, "width": p.width, "height": p.height,
                    "negative_prompt": p.negative_prompt, "seeds": seeds}  # fmt: skip
        started = time.perf_counter()
        images = list(self.plugin.generate_images([str(x) for x in prompts], settings))
        latency = (time.perf_counter() - started) * 1000.0
        _check_count("generate_images", len(prompts), len(images))
        out = []
        for prompt, seed, image in zip(prompts, seeds, images, strict=True):
            pixels = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)
            if pixels.ndim != 3 or pixels.shape[2] != 3:
                raise AdapterError(f"plugin {self.entrypoint} returned an image of shape {pixels.shape}, not H x W x 3")
            out.append(GeneratedImage(pixels=pixels, prompt=str(prompt), seed=seed, latency_ms=latency,
                                      batch_size=len(prompts), width=int(pixels.shape[1]), height=int(pixels.shape[0]),
                                      params={k: v for k, v in settings.items() if k != "seeds"}))  # fmt: skip
        return out

    def peak_memory_mb(self) -> float | None:
        """The worker process's peak RSS (a plugin's GPU use is not visible from here)."""
        from evalhub.adapters.diffusers import _peak_rss_mb

        return _peak_rss_mb()

    def load(self, checkpoint: CheckpointRef) -> None:
        from evalhub.adapters.uris import resolve

        if not checkpoint.adapter:
            raise AdapterError(
                f"model {checkpoint.model} has runtime python but no adapter (module:Class); register it "
                "from a repo with ai_eval_config.yaml"
            )
        self.entrypoint = checkpoint.adapter
        cls = import_entrypoint(checkpoint.adapter, checkpoint.code_uri)
        uri = str(resolve(checkpoint.uri)) if checkpoint.uri else ""
        try:
            self.plugin = cls(uri, dict(checkpoint.params))
        except Exception as exc:
            raise AdapterError(
                f"plugin {checkpoint.adapter} failed to load checkpoint {checkpoint.model}/{checkpoint.name}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not callable(getattr(self.plugin, "generate", None)) and not self.makes_images:
            raise AdapterError(
                f"plugin {checkpoint.adapter} has neither generate(prompts, params) nor "
                "generate_images(prompts, params)"
            )
        self.takes_messages = bool(getattr(self.plugin, "takes_messages", False))
        self.batch_size = max(1, int(checkpoint.params.get("batch_size", self.batch_size)))
        self.checkpoint = checkpoint

    def chat_template(self) -> str | None:
        renders = callable(getattr(self.plugin, "apply_chat_template", None))
        return f"plugin {self.entrypoint}.apply_chat_template" if renders else None

    def apply_chat_template(self, messages: list[Message], add_generation_prompt: bool = True) -> str:
        if not callable(getattr(self.plugin, "apply_chat_template", None)):
            raise AdapterError(
                f"plugin {self.entrypoint} takes no chats: give it takes_messages = True (generate gets "
                "lists of messages) or an apply_chat_template(messages, add_generation_prompt) method, or "
                "set config.apply_chat_template: false"
            )
        text = self._call("apply_chat_template", messages, add_generation_prompt)
        if not isinstance(text, str):
            raise AdapterError(
                f"plugin {self.entrypoint}.apply_chat_template returned a {type(text).__name__}, not a string"
            )
        return text

    def close(self) -> None:
        closer = getattr(self.plugin, "close", None)
        if callable(closer):
            closer()
        self.plugin = None

    def _call(self, method: str, *args: Any) -> Any:
        if self.plugin is None:
            raise AdapterError("the python adapter is not loaded: call load(checkpoint) first")
        fn = getattr(self.plugin, method, None)
        if not callable(fn):
            raise AdapterError(f"plugin {self.entrypoint} has no {method} method")
        try:
            return fn(*args)
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(
                f"plugin {self.entrypoint}.{method} raised {type(exc).__name__}: {exc}"
            ) from exc

    def _outputs(self, method: str, result: Any, expected: int) -> list[Any]:
        if isinstance(result, (str, bytes)) or not hasattr(result, "__len__"):
            raise AdapterError(
                f"plugin {self.entrypoint}.{method} must return a list, got {type(result).__name__}"
            )
        items = list(result)
        if len(items) != expected:
            raise AdapterError(
                f"plugin {self.entrypoint}.{method} returned {len(items)} outputs for {expected} inputs"
            )
        return items

    def _generate(self, prompts: list[Any], params: GenerationParams) -> list[Generation]:
        as_dict = dataclasses.asdict(params)
        as_dict["until"] = list(params.until)
        items = self._outputs("generate", self._call("generate", list(prompts), as_dict), len(prompts))
        out = []
        for prompt, item in zip(prompts, items, strict=True):
            if isinstance(item, Generation):
                gen = item
            elif isinstance(item, str):
                gen = Generation(text=item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                tokens_in, tokens_out = item.get("tokens_in"), item.get("tokens_out")
                gen = Generation(
                    text=item["text"],
                    tokens_in=int(tokens_in) if tokens_in is not None else None,
                    tokens_out=int(tokens_out) if tokens_out is not None else None,
                )
            else:
                raise AdapterError(
                    f"plugin {self.entrypoint}.generate returned a {type(item).__name__} for prompt {prompt!r}; "
                    "return strings"
                )
            gen.text = cut_at_stop(gen.text, params.until)
            out.append(gen)
        return out

    def _loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        items = self._outputs("loglikelihood", self._call("loglikelihood", list(requests)), len(requests))
        out = []
        for item in items:
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                out.append((float(item), False))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                out.append((float(item[0]), bool(item[1])))
            else:
                raise AdapterError(
                    f"plugin {self.entrypoint}.loglikelihood returned {item!r}; return (logprob, is_greedy) pairs"
                )
        return out

    def _loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        items = self._outputs(
            "loglikelihood_rolling", self._call("loglikelihood_rolling", list(texts)), len(texts)
        )
        try:
            return [float(x) for x in items]
        except (TypeError, ValueError) as exc:
            raise AdapterError(
                f"plugin {self.entrypoint}.loglikelihood_rolling returned non-numbers: {exc}"
            ) from exc
