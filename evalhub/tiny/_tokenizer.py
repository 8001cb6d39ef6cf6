"""The tiny model's character-level tokenizer, built with the ``tokenizers`` library.

One token per character (digits, operators, letters, space, newline, some punctuation) plus the
special tokens ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``. No post-processor: encoding a string adds
no special tokens, so lm-eval's ``hf`` backend and evalhub's ``hf`` adapter see the same ids.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CHARACTERS = (
    string.digits + "+-*/=<>()" + string.ascii_lowercase + string.ascii_uppercase + " \n.,:;?!'\"_#%&"
)


def vocab() -> dict[str, int]:
    """The token -> id table: special tokens first, then one id per character."""
    tokens = list(SPECIAL_TOKENS) + list(dict.fromkeys(CHARACTERS))
    return {token: i for i, token in enumerate(tokens)}


def build_tokenizer(model_max_length: int = 64) -> PreTrainedTokenizerFast:
    """A fresh ``PreTrainedTokenizerFast`` over the character vocabulary (save it with ``save_pretrained``)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=vocab(), unk_token="<unk>"))
    # every character is its own pre-token ([\s\S] so that a newline is one too)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
