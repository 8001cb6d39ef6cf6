"""The tiny model's tokenizer: a byte-level BPE trained locally with ``tokenizers``, and a chat template.

- Byte-level, GPT-2 style: any text encodes (no unknown token); words merge into tokens (``" three"``,
  ``"Answer"``), so a context and its continuation are encoded whole and split as real tokenizers need.
- Digits stay one token each (as many modern tokenizers keep them), so the arithmetic the model learns is
  the same however numbers are split; spaces and punctuation are pre-tokens of their own, so a prompt that
  ends in ``"= "`` tokenizes the way its training text does.
- A post-processor puts ``<|bos|>`` in front of every encoding: prompts, lm-eval's and evalhub's alike,
  start with it (a text that already starts with it gets none added: lm-eval's BOS rule).
- The chat template renders ``<|bos|><|user|>…<|end|>\\n<|assistant|>…<|end|>\\n``; ``<|end|>`` is the
  end-of-sequence token, so an answer in a chat stops by itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|end|>"
ROLES = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, BOS, EOS, *ROLES)
VOCAB_SIZE = 512

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)

# a little English besides the arithmetic: the words of multiple-choice prompts (MMLU-shaped tasks)
_TEXT = """The following are multiple choice questions (with answers) about mathematics.
Question: What is the sum of the two numbers? Answer: A. B. C. D.
Which of the following is true? The answer is the number of apples he has.
In this task, spell each digit of the number as a word.
Hello world. This is a small model that learns to add numbers and to spell them.
"""


def _training_texts() -> Iterable[str]:
    from evalhub.tiny._tasks import DIGIT_WORDS, add_rows, spell_rows

    yield from _TEXT.splitlines()
    for row in add_rows(600, seed=101):
        yield row["question"] + row["answer"] + "\n"
    for row in spell_rows(300, seed=101):
        yield row["question"] + " " + row["answer"] + "\n"
    yield " ".join(DIGIT_WORDS)


def build_tokenizer(model_max_length: int = 256) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE (deterministic, well under a second) as a ``PreTrainedTokenizerFast``
    with the chat template (save it with ``save_pretrained``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(_training_texts()), trainer=trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLES),
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
