"""The scorers themselves, no server: the exact match against lm-eval's own, regex extraction, lm-eval's
metrics by name, a function, the judges' prompts, placeholder checks and verdict parsing."""

from __future__ import annotations

import math
from typing import Any

import pytest

from evalhub.errors import InvalidValue
from evalhub.scorers import (
    ExactMatch,
    Function,
    Judge,
    LmEvalMetric,
    Regex,
    from_spec,
    parse_pair,
    parse_prometheus,
    parse_single,
)


def _sample(output: str, reference: str | None, **kw: Any) -> dict[str, Any]:
    return {"sample_key": kw.pop("key", "k"), "prompt": kw.pop("prompt", "2+2="), "output": output,
            "filtered_output": kw.pop("filtered", None), "reference": reference, "scores": {}, **kw}  # fmt: skip


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ignore_case": True},
        {"ignore_case": True, "ignore_punctuation": True},
        {"regexes_to_ignore": [r"\s+", ","]},
        {"ignore_numbers": True, "ignore_case": True},
    ],
)
def test_exact_match_equals_lm_evals(options: dict[str, Any]) -> None:
    from lm_eval.api.metrics import exact_match_hf_evaluate

    pairs = [("Paris", "paris"), ("4", "4"), (" 4", "4"), ("Hello, World!", "hello world"), ("12 apples", "apples"),
             ("a,b", "ab"), ("x", "y"), ("", "")]  # fmt: skip
    scorer = ExactMatch(**options)
    got = scorer.score([_sample(out, ref) for out, ref in pairs])
    for (out, ref), values in zip(pairs, got, strict=True):
        theirs = exact_match_hf_evaluate(predictions=[out], references=[ref], **options)["exact_match"]
        assert values["exact_match"] == theirs, (out, ref, options)


def test_exact_match_reads_the_filtered_output_and_leaves_no_reference_null() -> None:
    scorer = ExactMatch(strip=True)
    got = scorer.score([_sample("The answer: 4", "4", filtered="4"), _sample("4", None)])
    assert got == [{"exact_match": 1.0}, {"exact_match": None}]


def test_regex_takes_the_answer_out_then_matches() -> None:
    scorer = Regex(r"answer is (-?\d+)", flags="i")
    got = scorer.score(
        [_sample("The Answer is 42.", "42"), _sample("I think 42", "42"), _sample("answer is 7", "8")]
    )
    assert got == [{"exact_match": 1.0, "found": 1.0}, {"exact_match": 0.0, "found": 0.0},
                   {"exact_match": 0.0, "found": 1.0}]  # fmt: skip
    with pytest.raises(InvalidValue, match="not a valid regular expression"):
        Regex("(unclosed")
    with pytest.raises(InvalidValue, match="group 2 does not exist"):
        Regex(r"(\d+)", group=2)


def test_lm_eval_bleu_is_the_corpus_value_and_sentence_values_per_sample() -> None:
    from lm_eval.api.metrics import bleu

    refs = ["one two three four", "five six seven eight nine", "ten eleven twelve"]
    outs = ["one two three four", "five six eight nine", "ten twelve"]
    scorer = LmEvalMetric("bleu")
    got = scorer.score([_sample(o, r) for o, r in zip(outs, refs, strict=True)])
    assert got[0]["bleu"] == pytest.approx(bleu([(refs[0], outs[0])]))
    summary = scorer.corpus_summary([(r, o, None) for r, o in zip(refs, outs, strict=True)])
    assert summary["bleu"] == pytest.approx(bleu(list(zip(refs, outs, strict=True))))
    assert scorer.higher_is_better == {"bleu": True} and scorer.corpus
    em = LmEvalMetric("exact_match", ignore_case=True)
    assert em.score([_sample("PARIS", "paris")]) == [{"exact_match": 1.0}] and not em.corpus
    with pytest.raises(InvalidValue, match="lm-eval has no metric 'blue'"):
        LmEvalMetric("blue")


def test_a_function_scores_each_sample_and_its_version_follows_its_source() -> None:
    def score(sample: dict[str, Any]) -> dict[str, Any]:
        return {"long": len(sample["output"]) > 3, "len": len(sample["output"]), "skip": None}

    scorer = Function(score)
    assert scorer.name == "score" and len(scorer.version) == 16
    assert scorer.score([_sample("hello", "x")]) == [{"long": 1.0, "len": 5.0, "skip": None}]
    assert Function(lambda s: math.nan, name="nan").score([_sample("a", "b")]) == [
        {"score": pytest.approx(math.nan, nan_ok=True)}
    ]

    def broken(sample: dict[str, Any]) -> Any:
        return {"x": "high"}

    with pytest.raises(InvalidValue, match="a score is a number, a bool or None"):
        Function(broken).score([_sample("a", "b")])


def test_scorer_summaries_average_with_stderr_and_per_subtask() -> None:
    scorer = ExactMatch()
    summary = scorer.summarize({"exact_match": [1.0, 0.0, None, 1.0]}, ["a", "b", "a", "b"])
    assert summary["exact_match"] == pytest.approx(2 / 3)
    assert summary["exact_match_stderr"] == pytest.approx(math.sqrt((1 / 3) / 3))
    assert summary["a:exact_match"] == 1.0 and summary["b:exact_match"] == 0.5


def test_spec_entries_build_scorers_and_refuse_unknown_types() -> None:
    assert isinstance(from_spec({"type": "regex", "pattern": r"(\d+)", "name": "num"}), Regex)
    assert isinstance(from_spec({"type": "lm_eval", "metric": "chrf"}), LmEvalMetric)
    judge = from_spec(
        {"type": "judge", "model": "m", "checkpoint": "c", "mode": "pairwise", "baseline": "step-1"}
    )
    assert isinstance(judge, Judge) and judge.pairwise and judge.baseline == "step-1"
    with pytest.raises(InvalidValue, match="scorer type 'bleu' is unknown"):
        from_spec({"type": "bleu"})
    with pytest.raises(InvalidValue, match="scorer name"):
        ExactMatch(name="1bad")


# -- verdicts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("The answer is right. Rating: [[8]]", ("8", 8.0)),
        ("Rating: [[ 7.5 ]]", ("7.5", 7.5)),
        ("Rating: [5]", ("5", 5.0)),
        ("Rating: [[8]] ... actually [[3]]", (None, None)),  # two different ratings: no guess
        ("Rating: [[11]]", (None, None)),  # outside 1-10
        ("I would give it an eight", (None, None)),
        ("", (None, None)),
    ],
)
def test_mt_bench_single_verdicts(text: str, verdict: tuple[Any, Any]) -> None:
    parsed = parse_single(text)
    assert (parsed.verdict, parsed.score) == verdict


@pytest.mark.parametrize(
    ("text", "verdict"),
    [("A is better. [[A]]", "A"), ("[[B]]", "B"), ("Both fine [[C]]", "tie"), ("[[A]] no wait [[B]]", None),
     ("A is better", None), ("[[A]] [[A]]", "A")],
)  # fmt: skip
def test_mt_bench_pair_verdicts(text: str, verdict: str | None) -> None:
    assert parse_pair(text).verdict == verdict


def test_prometheus_verdicts_keep_the_feedback_as_rationale() -> None:
    parsed = parse_prometheus("Feedback: The response is correct but terse. [RESULT] 4")
    assert (parsed.verdict, parsed.score, parsed.rationale) == (
        "4",
        4.0,
        "The response is correct but terse.",
    )
    assert parse_prometheus("[RESULT] 9").verdict is None  # outside 1-5
    assert parse_prometheus("Good answer, 5/5").score is None


# -- judges -------------------------------------------------------------------------------------------


def test_judge_prompts_fill_the_templates() -> None:
    sample = _sample("4", "4", prompt="2+2=", extra={"doc": {"subject": "arith"}})
    single = Judge("m/c")
    text = single.prompt(sample)
    assert "[Question]\n2+2=" in text and "[The Start of Assistant's Answer]\n4\n" in text
    assert text.startswith("You are a helpful assistant.")
    pair = Judge("m/c", mode="pairwise", baseline="b")
    other = _sample("5", "4", prompt="2+2=")
    ab, ba = pair.prompt(sample, other, "AB"), pair.prompt(sample, other, "BA")
    assert "Assistant A's Answer]\n4\n" in ab and "Assistant B's Answer]\n5\n" in ab
    assert "Assistant A's Answer]\n5\n" in ba and "Assistant B's Answer]\n4\n" in ba
    prometheus = Judge("m/c", template="prometheus-absolute")
    assert "###Score Rubrics:\n[Is the response correct" in prometheus.prompt(sample)
    custom = Judge("m/c", template="Subject {doc.subject}: is '{answer}' right for {question}? {{json}}")
    assert custom.prompt(sample) == "Subject arith: is '4' right for 2+2=? {json}"
    chat = Judge("m/c", chat=True).prompt(sample)
    assert isinstance(chat, list) and [m["role"] for m in chat] == ["system", "user"]


def test_a_template_whose_placeholders_the_samples_lack_is_refused_by_name() -> None:
    judge = Judge("m/c", template="Grade {answer} on {difficulty}")
    with pytest.raises(InvalidValue) as info:
        judge.check(_sample("4", "4", key="k7"), 12)
    message = str(info.value)
    assert "{difficulty}" in message and "'k7'" in message and "run 12" in message and "{answer}" in message
    with pytest.raises(InvalidValue, match=r"needs \{reference\}"):
        Judge("m/c", mode="reference").check(_sample("4", None), 1)


def test_judge_modes_and_templates_must_agree() -> None:
    with pytest.raises(InvalidValue, match="pointwise template"):
        Judge("m/c", mode="pairwise", template="mt-bench-single")
    with pytest.raises(InvalidValue, match="'model/checkpoint'"):
        Judge("just-a-name")
    with pytest.raises(InvalidValue, match="unknown judge template"):
        Judge("m/c", template="mt-bench-triple")


@pytest.mark.parametrize(
    ("ab", "ba", "win", "outcome"),
    [("A", "B", 1.0, "win"), ("B", "A", 0.0, "loss"), ("tie", "tie", 0.5, "tie"), ("A", "A", 0.5, "inconsistent"),
     ("A", None, None, "unparsed"), (None, None, None, "unparsed")],
)  # fmt: skip
def test_pairs_combine_both_orders(ab: str | None, ba: str | None, win: float | None, outcome: str) -> None:
    result = Judge("m/c", mode="pairwise", baseline="b").combine(ab, ba)
    assert (result.win, result.outcome) == (win, outcome)
    strict = Judge("m/c", mode="pairwise", baseline="b", inconsistent="null").combine("A", "A")
    assert (strict.win, strict.outcome) == (None, "inconsistent")


def test_a_spec_scorer_that_cannot_be_built_is_refused_with_its_line() -> None:
    from evalhub.errors import SpecError
    from evalhub.spec import load_spec

    text = "name: x\nmodels: [{model: m}]\ntasks: [t]\nscorers:\n  - {type: exact_match}\n  - {type: regex, pattern: '('}\n"
    with pytest.raises(SpecError, match=r"line 6, field 'scorers\[1\]': pattern '\(' is not a valid regular"):
        load_spec(text)
    spec = load_spec(text.replace("pattern: '('", "pattern: '(x)'"))
    assert [s["type"] for s in spec.scorers] == ["exact_match", "regex"]
