"""The scoring service: scores stored samples again (a metric, a function or a judge), records every
rescoring on the server, and reads scorings and judge calls back.

A local scorer (:class:`~evalhub.scorers.ExactMatch`, ``Regex``, ``LmEvalMetric``, ``Function``) reads
each run's samples page by page, scores them in this process and sends the scores in batches. A
:class:`~evalhub.scorers.Judge` renders its prompts here first (so a template whose placeholders the
samples can't fill is refused before anything starts), then runs them as a judge experiment on the
cluster: one run of the judge checkpoint per judged run, executed by the Ray executor like any model's.
Its calls come back as that run's samples and are stored with the samples they judged.

>>> scoring = Scoring(client)
>>> scoring.score([run_id], ExactMatch(ignore_case=True))      # one row per run: the scoring and its metrics
>>> scoring.judge_calls(run_id)                                 # every call: prompt, raw output, verdict
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalhub.client import Client
from evalhub.errors import EvalhubError, InvalidValue
from evalhub.protocol import TERMINAL, number_from_wire

if TYPE_CHECKING:
    import polars as pl

    from evalhub.scorers import Judge, Scorer

PAGE = 1000
RESULTS_BATCH = 500
OPEN_TYPES = ("trace",)


def _samples(client: Client, run_id: int) -> Iterator[dict[str, Any]]:
    """Every stored sample of a run, by index, its scores as numbers; of a trace run, the spans that are
    no LLM call (flagged ``not_genai``: an application's own spans around its calls) are not scored."""
    for item in client.paged(f"/runs/{int(run_id)}/samples", limit=PAGE):
        if "not_genai" in ((item.get("extra") or {}).get("flags") or ()):
            continue
        item["scores"] = {k: number_from_wire(v) for k, v in (item.get("scores") or {}).items()}
        yield item


def _pages(client: Client, run_id: int) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for item in _samples(client, run_id):
        page.append(item)
        if len(page) >= PAGE:
            yield page
            page = []
    if page:
        yield page


def _prefixed(name: str, values: Mapping[str, float]) -> dict[str, float]:
    """Summary metrics under the scorer's name: ``m`` -> ``name.m``, ``sub:m`` -> ``sub:name.m``."""
    out = {}
    for key, value in values.items():
        sub, sep, rest = key.partition(":")
        out[f"{sub}:{name}.{rest}" if sep else f"{name}.{key}"] = value
    return out


class Scoring:
    """Rescoring of runs on one tracking server."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # -- applying a scorer ----------------------------------------------------------------------

    def score(
        self,
        run_ids: Sequence[int],
        scorer: Scorer | Mapping[str, Any],
        *,
        baseline: str | int | None = None,
        executor: Any = None,
        progress: bool = False,
    ) -> pl.DataFrame:
        """Apply ``scorer`` to the stored samples of each run; one row per run with its scoring's id,
        counts and summary metrics. A judge runs on the cluster (``executor``, a Ray executor by
        default); a pairwise one compares each run with ``baseline`` (the judge's own if not given)."""
        from evalhub.scorers import Judge, from_spec

        scorer = from_spec(scorer)
        runs = [self._scorable(int(r)) for r in run_ids]
        if not runs:
            raise InvalidValue("no runs to score")
        if isinstance(scorer, Judge):
            rows = self._judge(runs, scorer, baseline, executor)
        else:
            rows = [self._local(run, scorer, progress) for run in runs]
        return _frame(rows)

    def _scorable(self, run_id: int) -> dict[str, Any]:
        run: dict[str, Any] = self.client.get(f"/runs/{run_id}")
        if run.get("status") not in TERMINAL and run.get("type") not in OPEN_TYPES:
            raise InvalidValue(f"run {run_id} is {run.get('status')}: score its samples once it has finished")
        return run

    def _start(self, run: Mapping[str, Any], scorer: Scorer, **extra: Any) -> dict[str, Any]:
        body = {"run_id": int(run["id"]), "name": scorer.name, "kind": scorer.kind, "version": scorer.version,
                "config": scorer.config(), "client_key": str(uuid.uuid4()), **extra}  # fmt: skip
        started: dict[str, Any] = self.client.post("/scorings", body)
        return started

    def _send(self, scoring_id: int, items: list[dict[str, Any]]) -> int:
        applied = 0
        for start in range(0, len(items), RESULTS_BATCH):
            answer = self.client.post(
                f"/scorings/{scoring_id}/results", {"items": items[start : start + RESULTS_BATCH]}
            )
            applied += int(answer.get("applied", 0))
        return applied

    def _finish(
        self,
        scoring_id: int,
        name: str,
        metrics: Mapping[str, float],
        directions: Mapping[str, bool],
        counts: Mapping[str, Any],
        status: str = "completed",
        error: str | None = None,
    ) -> dict[str, Any]:
        from evalhub.protocol import to_wire

        prefixed = _prefixed(name, metrics)
        hib = {k: directions[_bare(k, name)] for k in prefixed if _bare(k, name) in directions}
        body = {"status": status, "metrics": to_wire(prefixed), "higher_is_better": hib, "counts": dict(counts),
                "error": error}  # fmt: skip
        done: dict[str, Any] = self.client.post(f"/scorings/{scoring_id}/finish", body)
        return done

    def _fail(self, scoring_id: int, name: str, exc: BaseException) -> None:
        try:
            self._finish(scoring_id, name, {}, {}, {}, status="failed", error=f"{type(exc).__name__}: {exc}")
        except EvalhubError:  # the server is away: the scoring stays "running", its error in this raise
            pass

    def _local(self, run: Mapping[str, Any], scorer: Scorer, progress: bool) -> dict[str, Any]:
        from evalhub.scorers import LmEvalMetric

        scoring = self._start(run, scorer)
        sid = int(scoring["id"])
        values: dict[str, list[float | None]] = {}
        tasks: list[str | None] = []
        items_seen = 0
        corpus: list[tuple[str, str, str | None]] = []
        try:
            for page in _pages(self.client, int(run["id"])):
                scored = scorer.score(page)
                items = []
                for sample, got in zip(page, scored, strict=True):
                    for metric in got:
                        values.setdefault(metric, [None] * items_seen)
                    for metric, column in values.items():
                        column.append(got.get(metric))
                    tasks.append(sample.get("task"))
                    items_seen += 1
                    stored = {f"{scorer.name}.{m}": v for m, v in got.items() if v is not None}
                    items.append({"sample_key": sample["sample_key"], "scores": _wire(stored)})
                    if (
                        isinstance(scorer, LmEvalMetric)
                        and scorer.corpus
                        and sample.get("reference") is not None
                    ):
                        from evalhub.scorers import answer_of

                        corpus.append((str(sample["reference"]), answer_of(sample), sample.get("task")))
                self._send(sid, items)
            if isinstance(scorer, LmEvalMetric) and scorer.corpus:
                summary = scorer.corpus_summary(corpus)
            else:
                summary = scorer.summarize(values, tasks)
            null = {m: sum(v is None for v in column) for m, column in values.items()}
            counts = {"samples": items_seen, "null": null}
            done = self._finish(sid, scorer.name, summary, scorer.directions(list(values)), counts)
        except BaseException as exc:
            self._fail(sid, scorer.name, exc)
            raise
        return done

    # -- judges ---------------------------------------------------------------------------------

    def _judge(
        self, runs: list[dict[str, Any]], judge: Judge, baseline: str | int | None, executor: Any
    ) -> list[dict[str, Any]]:
        from evalhub.scorers._judge import Judge as _Judge

        assert isinstance(judge, _Judge)
        ckpt, model = self._judge_checkpoint(judge)
        baseline = baseline if baseline is not None else judge.baseline
        from evalhub.scorers import answer_of

        pairs = self._baselines(runs, baseline) if judge.pairwise else {}
        calls: dict[int, list[dict[str, Any]]] = {}
        tasks: dict[int, dict[str, str | None]] = {}
        # what length bias is measured against: a pair's len(run's answer) - len(baseline's answer),
        # or, pointwise, the answer's length
        lengths: dict[int, dict[str, int]] = {}
        for run in runs:
            rid = int(run["id"])
            mine = list(_samples(self.client, rid))
            tasks[rid] = {str(s["sample_key"]): s.get("task") for s in mine}
            calls[rid] = []
            lengths[rid] = {}
            if judge.pairwise:
                base_id = pairs.get(rid)
                if base_id is None:
                    continue  # the baseline itself
                theirs = {str(s["sample_key"]): s for s in _samples(self.client, base_id)}
                for sample in mine:
                    other = theirs.get(str(sample["sample_key"]))
                    if other is None:
                        continue
                    judge.check(sample, rid, other)
                    lengths[rid][str(sample["sample_key"])] = len(answer_of(sample)) - len(answer_of(other))
                    for position in ("AB", "BA"):
                        calls[rid].append({"run_id": rid, "sample_key": sample["sample_key"], "position": position,
                                           "other_run_id": base_id, "prompt": judge.prompt(sample, other, position)})  # fmt: skip
            else:
                for sample in mine:
                    judge.check(sample, rid)
                    lengths[rid][str(sample["sample_key"])] = len(answer_of(sample))
                    calls[rid].append({"run_id": rid, "sample_key": sample["sample_key"], "position": "single",
                                       "other_run_id": None, "prompt": judge.prompt(sample)})  # fmt: skip
        judged = [r for r in runs if calls.get(int(r["id"]))]
        if not judged:
            raise InvalidValue(
                "the judge has nothing to judge: "
                + (
                    "no run shares samples with the baseline"
                    if judge.pairwise
                    else "the runs have no samples"
                )
            )
        runtime = judge.runtime or str(model.get("runtime") or "hf")
        exp = self._judge_experiment(judge, judged, ckpt, runtime)
        by_target = {int(r["tags"]["judged_run"]): r for r in exp.get("runs") or []}
        scorings = {}
        for run in judged:
            rid = int(run["id"])
            info = {"model": judge.model, "checkpoint": judge.checkpoint, "runtime": runtime,
                    "checkpoint_id": int(ckpt["id"]), "uri": ckpt.get("uri")}  # fmt: skip
            scorings[rid] = self._start(run, judge, judge=info, judge_run_id=int(by_target[rid]["id"]),
                                        baseline_run_id=pairs.get(rid))  # fmt: skip
        try:
            self._execute(judge, exp, by_target, calls, ckpt, model, runtime, executor)
            done = []
            for run in judged:
                rid = int(run["id"])
                done.append(self._collect(judge, scorings[rid], by_target[rid], tasks[rid], lengths[rid]))
            return done
        except BaseException as exc:
            for s in scorings.values():
                current = self.client.get(f"/scorings/{int(s['id'])}")
                if current.get("status") == "running":
                    self._fail(int(s["id"]), judge.name, exc)
            raise

    def _judge_checkpoint(self, judge: Judge) -> tuple[dict[str, Any], dict[str, Any]]:
        from evalhub.errors import NotFound

        try:
            model: dict[str, Any] = self.client.get(f"/models/{judge.model}")
        except NotFound:
            raise InvalidValue(f"judge model {judge.model!r} is not registered") from None
        found = list(self.client.paged("/checkpoints", model=judge.model, name=judge.checkpoint))
        found = [c for c in found if c.get("name") == judge.checkpoint]
        if not found:
            names = [c["name"] for c in self.client.paged("/checkpoints", model=judge.model)]
            raise InvalidValue(
                f"judge checkpoint {judge.checkpoint!r} of model {judge.model!r} is not registered "
                f"(it has {', '.join(names) or 'none'})"
            )
        return found[0], model

    def _baselines(self, runs: list[dict[str, Any]], baseline: str | int | None) -> dict[int, int]:
        """Each run -> the baseline run it is judged against (the same task, in its experiment)."""
        from evalhub.services.comparison import matches

        if baseline is None:
            raise InvalidValue(
                "a pairwise judge needs a baseline: Judge(..., mode='pairwise', baseline='step-100') or "
                "exp.score(judge, baseline=...) (a checkpoint, 'model/checkpoint', a run name or id)"
            )
        out: dict[int, int] = {}
        for run in runs:
            if isinstance(baseline, int) or str(baseline).isdigit():
                base: dict[str, Any] = self.client.get(f"/runs/{int(baseline)}")
            else:
                if run.get("experiment_id") is None:
                    raise InvalidValue(
                        f"run {run['id']} is in no experiment: name the baseline by its run id"
                    )
                siblings = list(
                    self.client.paged(f"/experiments/{run['experiment_id']}/runs", task=run.get("task"))
                )
                entries = [{**s, "run_id": s["id"]} for s in siblings]
                hits = [s for s in entries if matches(s, baseline)]
                if len(hits) != 1:
                    names = ", ".join(str(s.get("checkpoint") or s.get("name")) for s in entries)
                    raise InvalidValue(
                        f"baseline {baseline!r} names {len(hits)} runs of task {run.get('task')!r} "
                        f"(the experiment's runs: {names}); name exactly one"
                    )
                base = hits[0]
            if int(base["id"]) != int(run["id"]):
                out[int(run["id"])] = int(base["id"])
        return out

    def _judge_experiment(
        self, judge: Judge, runs: list[dict[str, Any]], ckpt: Mapping[str, Any], runtime: str
    ) -> dict[str, Any]:
        config = {"batch_size": judge.batch_size or 16,
                  "generation": {"max_gen_toks": judge.max_new_tokens, "temperature": 0, "do_sample": False},
                  "engine": "judge"}  # fmt: skip
        targets = sorted({int(r["experiment_id"]) for r in runs if r.get("experiment_id") is not None})
        body = {
            "name": f"judge {judge.name}: {judge.judge_name}"[:255],
            "spec": {"judge": {"name": judge.name, "model": judge.model, "checkpoint": judge.checkpoint,
                               "version": judge.version, **judge.config()}, "judged_experiments": targets},
            "config": {"judge": True},
            "client_key": str(uuid.uuid4()),
            "runs": [
                {"name": f"{judge.judge_name}/{runtime}/judge:{judge.name}/run-{r['id']}"[:255],
                 "type": "offline_eval", "model": judge.model, "checkpoint": judge.checkpoint, "runtime": runtime,
                 "task": f"judge:{judge.name}", "config": config,
                 "tags": {"judged_run": int(r["id"]), "scorer": judge.name}, "max_attempts": 3}
                for r in runs
            ],
        }  # fmt: skip
        created: dict[str, Any] = self.client.post("/experiments", body)
        return created

    def _execute(
        self,
        judge: Judge,
        exp: Mapping[str, Any],
        by_target: Mapping[int, Mapping[str, Any]],
        calls: Mapping[int, list[dict[str, Any]]],
        ckpt: Mapping[str, Any],
        model: Mapping[str, Any],
        runtime: str,
        executor: Any,
    ) -> None:
        from evalhub.adapters.base import CheckpointRef
        from evalhub.execution.executor import Job

        ref = CheckpointRef(
            model=judge.model, name=judge.checkpoint, uri=str(ckpt.get("uri") or ""), runtime=runtime,
            adapter=model.get("adapter"), code_uri=model.get("code_uri"),
            params=dict(model.get("default_params") or {}), step=ckpt.get("step"),
        )  # fmt: skip
        jobs = []
        for target, run in by_target.items():
            task = {
                "name": f"judge:{judge.name}",
                "engine": "judge",
                "engine_config": {"calls": calls[target], "parser": judge.template.parser,
                                  "scale": list(judge.template.scale), "judge": judge.judge_name},
            }  # fmt: skip
            jobs.append(
                Job(run_id=int(run["id"]), checkpoint=ref, task=task, config=dict(run.get("config") or {}))
            )
        if executor is None:
            from evalhub.execution.executor import RayExecutor

            executor = RayExecutor()
        resources = {"gpus_per_worker": 1, "max_workers": 1, **judge.resources}
        executor.execute(self.client, int(exp["id"]), jobs, resources)

    def _collect(
        self,
        judge: Judge,
        scoring: Mapping[str, Any],
        judge_run: Mapping[str, Any],
        tasks: Mapping[str, str | None],
        lengths: Mapping[str, int],
    ) -> dict[str, Any]:
        """The judge run's calls as the judged run's scores and judge calls, with how far to trust
        them (position consistency, length bias); the scoring finished."""
        sid, jid = int(scoring["id"]), int(judge_run["id"])
        state = self.client.get(f"/runs/{jid}")
        if state.get("status") != "completed":
            error = f"the judge run {jid} {state.get('status')}: {state.get('error') or 'no reason given'}"
            self._finish(sid, judge.name, {}, {}, {}, status="failed", error=error)
            raise EvalhubError(error)
        by_key: dict[str, dict[str, dict[str, Any]]] = {}
        for sample in _samples(self.client, jid):
            extra = sample.get("extra") or {}
            call = {
                "position": extra.get("position") or "single",
                "other_run_id": extra.get("other_run_id"),
                "judge": extra.get("judge") or judge.judge_name,
                "prompt": sample.get("prompt"),
                "raw_output": sample.get("output"),
                "verdict": extra.get("verdict"),
                "score": (sample.get("scores") or {}).get("verdict"),
                "rationale": extra.get("rationale"),
                "latency_ms": sample.get("latency_ms"),
            }
            by_key.setdefault(str(extra.get("sample_key")), {})[str(call["position"])] = call
        metric = f"{judge.name}.{judge.metric}"
        items, column, task_column = [], [], []
        outcomes: dict[str, int] = {}
        unparsed = 0
        first, swapped = [], []
        shown: list[Any] = []  # verdicts (pairwise: of each order) beside the lengths they saw
        shown_lengths: list[float] = []
        for key, by_position in by_key.items():
            unparsed += sum(c["verdict"] is None for c in by_position.values())
            if judge.pairwise:
                ab, ba = by_position.get("AB"), by_position.get("BA")
                first.append(ab["verdict"] if ab else None)
                swapped.append(ba["verdict"] if ba else None)
                difference = lengths.get(key)
                for call, sign in ((ab, 1), (ba, -1)):  # BA shows the baseline's answer first
                    if call is not None and difference is not None:
                        shown.append(call["verdict"])
                        shown_lengths.append(sign * difference)
                pair = judge.combine(ab["verdict"] if ab else None, ba["verdict"] if ba else None)
                outcomes[pair.outcome] = outcomes.get(pair.outcome, 0) + 1
                value = pair.win
            else:
                value = by_position["single"]["score"] if "single" in by_position else None
                if key in lengths:
                    shown.append(value)
                    shown_lengths.append(lengths[key])
            column.append(value)
            task_column.append(tasks.get(key))
            items.append({"sample_key": key, "scores": _wire({metric: value} if value is not None else {}),
                          "calls": [_wire_call(c) for c in by_position.values()]})  # fmt: skip
        self._send(sid, items)
        summary = judge.summarize({judge.metric: column}, task_column)
        summary["unparsed"] = float(unparsed)
        counts: dict[str, Any] = {"samples": len(items), "calls": sum(len(i["calls"]) for i in items),
                                  "unparsed": unparsed, "null": sum(v is None for v in column)}  # fmt: skip
        from evalhub import stats

        bias = stats.length_bias(shown, shown_lengths)
        counts["length_bias"] = {k: (None if isinstance(v, float) and v != v else v)
                                 for k, v in bias.as_dict().items()}  # fmt: skip
        if bias.rho == bias.rho:  # NaN (too few items, or a constant side) is no figure
            summary["length_bias"] = bias.rho
        if judge.pairwise:
            plural = {"win": "wins", "loss": "losses", "tie": "ties", "inconsistent": "inconsistent"}
            for outcome, name in plural.items():
                counts[name] = outcomes.get(outcome, 0)
                summary[name] = float(counts[name])
            counts["unparsed_pairs"] = outcomes.get("unparsed", 0)
            consistency = stats.position_consistency(first, swapped)
            counts["position_consistency"] = consistency.as_dict()
            if consistency.n:
                summary["position_consistency"] = consistency.share
        return self._finish(sid, judge.name, summary, judge.higher_is_better, counts)

    # -- reads ----------------------------------------------------------------------------------

    def scorings(self, run_id: int | None = None, experiment_id: int | None = None) -> pl.DataFrame:
        """Every rescoring (of a run, or of an experiment's runs): scorer, version, when, its counts."""
        from evalhub._frames import frame

        items = list(self.client.paged("/scorings", run_id=run_id, experiment_id=experiment_id))
        return frame(
            items, ["id", "run_id", "name", "kind", "version", "status", "created_at", "finished_at"]
        )

    def judge_reliability(self, experiment_id: int) -> pl.DataFrame:
        """How far to trust each judge's scores on an experiment's runs, one row per judge scoring:
        ``position_consistency`` (pairwise: the share of pairs whose verdict survives swapping the
        order, with its Wilson interval), ``length_bias`` (Spearman's rho of the verdict with the
        answers' length difference, pointwise with the answer's length, and its p-value), and, where
        people labelled the same samples in an annotation queue of the experiment (a pairwise queue
        against the same baseline for a pairwise judge, a scale queue for a pointwise one),
        ``kappa_people``: Cohen's kappa between the judge's score and each person's label, over every
        (sample, person) both scored (weighted quadratically on a scale), with ``people`` and
        ``kappa_n``. A figure that can't be computed is null, with its reason."""
        import polars as pl

        schema: dict[str, Any] = {
            "scoring_id": pl.Int64, "scorer": pl.String, "judge": pl.String, "mode": pl.String,
            "run_id": pl.Int64, "baseline_run_id": pl.Int64, "samples": pl.Int64, "unparsed": pl.Int64,
            "position_consistency": pl.Float64, "consistency_low": pl.Float64, "consistency_high": pl.Float64,
            "length_bias": pl.Float64, "length_bias_p": pl.Float64, "length_bias_reason": pl.String,
            "kappa_people": pl.Float64, "people": pl.Int64, "kappa_n": pl.Int64, "kappa_reason": pl.String,
        }  # fmt: skip
        queues = list(self.client.paged("/annotation-queues", experiment_id=int(experiment_id)))
        labels = {int(q["id"]): list(self.client.paged(f"/annotation-queues/{int(q['id'])}/labels"))
                  for q in queues}  # fmt: skip
        rows = []
        for scoring in self.client.paged("/scorings", experiment_id=int(experiment_id)):
            if scoring.get("kind") != "judge" or scoring.get("status") != "completed":
                continue
            config, counts = scoring.get("config") or {}, scoring.get("counts") or {}
            consistency, bias = counts.get("position_consistency") or {}, counts.get("length_bias") or {}
            judge = scoring.get("judge") or {}
            row = {
                "scoring_id": int(scoring["id"]), "scorer": scoring.get("name"), "mode": config.get("mode"),
                "judge": f"{judge.get('model')}/{judge.get('checkpoint')}" if judge else None,
                "run_id": int(scoring["run_id"]), "baseline_run_id": scoring.get("baseline_run_id"),
                "samples": counts.get("samples"), "unparsed": counts.get("unparsed"),
                "position_consistency": _figure(consistency.get("share")),
                "consistency_low": _figure(consistency.get("low")),
                "consistency_high": _figure(consistency.get("high")),
                "length_bias": _figure(bias.get("rho")), "length_bias_p": _figure(bias.get("p_value")),
                "length_bias_reason": bias.get("reason"),
            }  # fmt: skip
            row.update(self._people_agreement(scoring, config, queues, labels))
            rows.append(row)
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    def _people_agreement(
        self,
        scoring: Mapping[str, Any],
        config: Mapping[str, Any],
        queues: list[dict[str, Any]],
        labels: Mapping[int, list[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Kappa between a judge scoring's per-sample scores and people's labels of the same samples."""
        from evalhub import stats

        pairwise = config.get("mode") == "pairwise"
        run_id, baseline = int(scoring["run_id"]), scoring.get("baseline_run_id")
        metric = f"{scoring['name']}.{'win' if pairwise else 'score'}"
        categories: list[float] = [0.0, 0.5, 1.0]  # pairwise: the baseline's answer, a tie, the run's
        if not pairwise:
            scale = [float(v) for v in config.get("scale") or ()]
            categories = [float(v) for v in range(int(min(scale)), int(max(scale)) + 1)] if scale else []
        judged: list[float | None] = []
        people: list[float | None] = []
        persons: set[str] = set()
        mine: dict[str, float] | None = None
        for queue in queues:
            qs = queue["schema"]
            if qs["kind"] != ("pairwise" if pairwise else "scale"):
                continue
            if not pairwise and [float(v) for v in range(int(qs["min"]), int(qs["max"]) + 1)] != categories:
                continue  # a person's scale that is not the judge's: nothing to compare
            for label in labels.get(int(queue["id"]), []):
                if label.get("value") is None:
                    continue
                value = float(label["value"])
                sides = (label.get("run_id"), label.get("other_run_id"))
                if pairwise and sides == (baseline, run_id):
                    value = 1.0 - value  # the queue put the baseline first: its 1 is the baseline's win
                elif sides[0] != run_id or (pairwise and sides[1] != baseline):
                    continue
                if mine is None:
                    mine = {str(s["sample_key"]): s["scores"][metric] for s in _samples(self.client, run_id)
                            if s["scores"].get(metric) is not None}  # fmt: skip
                judged.append(mine.get(str(label["sample_key"])))
                people.append(value)
                persons.add(str(label["person"]))
        if not people:
            what = (
                "a pairwise queue against its baseline" if pairwise else "a scale queue on the judge's scale"
            )
            return {"kappa_people": None, "people": 0, "kappa_n": 0,
                    "kappa_reason": f"no person labelled these samples in {what}"}  # fmt: skip
        kappa = stats.cohen_kappa(
            judged, people, weights=None if pairwise else "quadratic", labels=categories
        )
        return {"kappa_people": _figure(kappa.kappa), "people": len(persons), "kappa_n": kappa.n,
                "kappa_reason": kappa.reason}  # fmt: skip

    def judge_calls(
        self, run_id: int, sample_key: str | None = None, scoring_id: int | None = None
    ) -> pl.DataFrame:
        """The judge calls on a run's samples: prompt, raw output, verdict (null: unparseable), rationale."""
        import polars as pl

        items = list(self.client.paged(f"/runs/{int(run_id)}/judge-calls", sample_key=sample_key,
                                       scoring_id=scoring_id))  # fmt: skip
        schema: dict[str, Any] = {
            "id": pl.Int64, "scoring_id": pl.Int64, "scorer": pl.String, "run_id": pl.Int64, "sample_key": pl.String,
            "position": pl.String, "other_run_id": pl.Int64, "judge": pl.String, "prompt": pl.String,
            "raw_output": pl.String, "verdict": pl.String, "score": pl.Float64, "rationale": pl.String,
            "latency_ms": pl.Float64, "created_at": pl.String,
        }  # fmt: skip
        rows = [
            {k: (number_from_wire(i.get(k)) if k == "score" else i.get(k)) for k in schema} for i in items
        ]
        return pl.DataFrame(rows, schema=schema, orient="row")


def _figure(value: Any) -> float | None:
    """A stored figure as a float, null for none (or NaN)."""
    return None if value is None or value != value else float(value)


def _bare(key: str, name: str) -> str:
    _, sep, rest = key.partition(":")
    rest = rest if sep else key
    return rest[len(name) + 1 :]


def _wire(values: Mapping[str, float | None]) -> dict[str, Any]:
    from evalhub.protocol import to_wire

    return {k: to_wire(v) for k, v in values.items() if v is not None}


def _wire_call(call: Mapping[str, Any]) -> dict[str, Any]:
    from evalhub.protocol import to_wire

    out = dict(call)
    if out.get("score") is not None:
        out["score"] = to_wire(float(out["score"]))
    return out


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Scorings as one row each: the scoring, its counts, then its summary metrics."""
    import polars as pl

    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row.get("metrics") or {}))
    out = []
    for row in rows:
        counts = row.get("counts") or {}
        entry = {"run_id": row["run_id"], "scoring_id": row["id"], "scorer": row["name"], "kind": row["kind"],
                 "version": row["version"], "status": row["status"], "samples": counts.get("samples"),
                 "created_at": row["created_at"]}  # fmt: skip
        for key in keys:
            entry[key] = number_from_wire((row.get("metrics") or {}).get(key))
        out.append(entry)
    schema: dict[str, Any] = {"run_id": pl.Int64, "scoring_id": pl.Int64, "scorer": pl.String, "kind": pl.String,
                              "version": pl.String, "status": pl.String, "samples": pl.Int64,
                              "created_at": pl.String, **{k: pl.Float64 for k in keys}}  # fmt: skip
    return pl.DataFrame(out, schema=schema, orient="row")


__all__ = ["Scoring"]
