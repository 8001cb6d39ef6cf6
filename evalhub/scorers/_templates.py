"""The judges' prompt formats: MT-Bench's ``single`` and ``pair`` prompts (plain and reference-guided,
from FastChat's ``judge_prompts.jsonl``) and Prometheus' absolute grading prompt, each with the parser
that reads its verdict.

Placeholders are ``{name}``; a judge fills them from each sample: ``question`` (the prompt the run was
given), ``answer`` (its answer), ``reference``, ``answer_a``/``answer_b`` (a pair, in the order shown),
``rubric`` (the judge's own), and any field of the sample or of its task's document (``task``,
``doc.subject``). ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from evalhub.errors import InvalidValue

Parser = Literal["mt_bench_single", "mt_bench_pair", "prometheus"]


@dataclass(frozen=True)
class JudgeTemplate:
    """A judge's prompt: a system message, a user message with placeholders, and how its answer is read."""

    name: str
    mode: Literal["single", "pair"]
    prompt: str
    parser: Parser
    system: str = ""
    scale: tuple[int, int] = (1, 10)
    description: str = ""

    def fields(self) -> list[str]:
        """The placeholders of its texts, in order of appearance."""
        return placeholders(self.system + "\n" + self.prompt)


_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def placeholders(text: str) -> list[str]:
    """``{name}`` placeholders of a template (``{{literal}}`` is not one), each once, in order."""
    return list(dict.fromkeys(m.group(1) for m in _TOKEN.finditer(text) if m.group(1) is not None))


def render(text: str, values: dict[str, str]) -> str:
    """Fill the placeholders; ``{{``/``}}`` become literal braces."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return values[match.group(1)]
        return match.group(0)[0]

    return _TOKEN.sub(fill, text)


_SINGLE_SYSTEM = "You are a helpful assistant."

MT_BENCH_SINGLE = JudgeTemplate(
    name="mt-bench-single",
    mode="single",
    parser="mt_bench_single",
    system=_SINGLE_SYSTEM,
    prompt=(
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an "
        "AI assistant to the user question displayed below. Your evaluation should consider factors such as the "
        "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
        "evaluation by providing a short explanation. Be as objective as possible. After providing your "
        "explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: "
        '"[[rating]]", for example: "Rating: [[5]]".\n\n[Question]\n{question}\n\n'
        "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    ),
    description="MT-Bench single-v1: a 1-10 rating as [[n]]",
)

MT_BENCH_SINGLE_REF = JudgeTemplate(
    name="mt-bench-single-ref",
    mode="single",
    parser="mt_bench_single",
    system=_SINGLE_SYSTEM,
    prompt=(
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an "
        "AI assistant to the user question displayed below. Your evaluation should consider correctness and "
        "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by "
        "comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as "
        "objective as possible. After providing your explanation, you must rate the response on a scale of 1 to "
        '10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]".\n\n'
        "[Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]\n\n"
        "[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    ),
    description="MT-Bench single-math-v1 (reference-guided): a 1-10 rating as [[n]]",
)

_PAIR_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants "
    "to the user question displayed below. You should choose the assistant that follows the user's "
    "instructions and answers the user's question better. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your "
    "evaluation by comparing the two responses and provide a short explanation. Avoid any position biases and "
    "ensure that the order in which the responses were presented does not influence your decision. Do not "
    "allow the length of the responses to influence your evaluation. Do not favor certain names of the "
    "assistants. Be as objective as possible. After providing your explanation, output your final verdict by "
    'strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and '
    '"[[C]]" for a tie.'
)

MT_BENCH_PAIR = JudgeTemplate(
    name="mt-bench-pair",
    mode="pair",
    parser="mt_bench_pair",
    system=_PAIR_SYSTEM,
    prompt=(
        "[User Question]\n{question}\n\n[The Start of Assistant A's Answer]\n{answer_a}\n"
        "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{answer_b}\n"
        "[The End of Assistant B's Answer]"
    ),
    description="MT-Bench pair-v2: [[A]], [[B]] or [[C]] (a tie)",
)

MT_BENCH_PAIR_REF = JudgeTemplate(
    name="mt-bench-pair-ref",
    mode="pair",
    parser="mt_bench_pair",
    system=(
        "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
        "assistants to the user question displayed below. Your evaluation should consider correctness and "
        "helpfulness. You will be given a reference answer, assistant A's answer, and assistant B's answer. Your "
        "job is to evaluate which assistant's answer is better. Begin your evaluation by comparing both "
        "assistants' answers with the reference answer. Identify and correct any mistakes. Avoid any position "
        "biases and ensure that the order in which the responses were presented does not influence your "
        "decision. Do not allow the length of the responses to influence your evaluation. Do not favor certain "
        "names of the assistants. Be as objective as possible. After providing your explanation, output your "
        'final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant '
        'B is better, and "[[C]]" for a tie.'
    ),
    prompt=(
        "[User Question]\n{question}\n\n[The Start of Reference Answer]\n{reference}\n[The End of Reference Answer]"
        "\n\n[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
        "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
    ),
    description="MT-Bench pair-math-v1 (reference-guided): [[A]], [[B]] or [[C]]",
)

PROMETHEUS_ABSOLUTE = JudgeTemplate(
    name="prometheus-absolute",
    mode="single",
    parser="prometheus",
    scale=(1, 5),
    system="You are a fair judge assistant tasked with providing clear, objective feedback based on specific "
    "criteria, ensuring each assessment reflects the absolute standards set for performance.",
    prompt=(
        "###Task Description:\nAn instruction (might include an Input inside it), a response to evaluate, a "
        "reference answer that gets a score of 5, and a score rubric representing a evaluation criteria are "
        "given.\n1. Write a detailed feedback that assess the quality of the response strictly based on the "
        "given score rubric, not evaluating in general.\n2. After writing a feedback, write a score that is an "
        "integer between 1 and 5. You should refer to the score rubric.\n3. The output format should look as "
        'follows: "(write a feedback for criteria) [RESULT] (an integer number between 1 and 5)"\n4. Please do '
        "not generate any other opening, closing, and explanations.\n\n###The instruction to evaluate:\n"
        "{question}\n\n###Response to evaluate:\n{answer}\n\n###Reference Answer (Score 5):\n{reference}\n\n"
        "###Score Rubrics:\n{rubric}\n\n###Feedback: "
    ),
    description="Prometheus absolute grading: feedback, then [RESULT] n with n in 1-5",
)

TEMPLATES: dict[str, JudgeTemplate] = {
    t.name: t
    for t in (MT_BENCH_SINGLE, MT_BENCH_SINGLE_REF, MT_BENCH_PAIR, MT_BENCH_PAIR_REF, PROMETHEUS_ABSOLUTE)
}
"""The built-in templates by name."""

DEFAULT_RUBRIC = (
    "[Is the response correct, helpful and complete for the instruction?]\n"
    "Score 1: The response is wrong or unrelated.\nScore 2: The response is mostly wrong.\n"
    "Score 3: The response is partly correct.\nScore 4: The response is correct with minor issues.\n"
    "Score 5: The response is fully correct and helpful."
)


def template_of(value: str | JudgeTemplate) -> JudgeTemplate:
    """A built-in template by name, or the given one."""
    if isinstance(value, JudgeTemplate):
        return value
    found = TEMPLATES.get(value)
    if found is None:
        raise InvalidValue(f"unknown judge template {value!r}; built in: {', '.join(TEMPLATES)}")
    return found


__all__ = [
    "DEFAULT_RUBRIC",
    "MT_BENCH_PAIR",
    "MT_BENCH_PAIR_REF",
    "MT_BENCH_SINGLE",
    "MT_BENCH_SINGLE_REF",
    "PROMETHEUS_ABSOLUTE",
    "TEMPLATES",
    "JudgeTemplate",
    "placeholders",
    "render",
    "template_of",
]
