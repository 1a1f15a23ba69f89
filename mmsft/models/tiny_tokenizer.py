"""A small byte-level BPE tokenizer, trained locally and deterministically, shaped like Qwen's.

The tiny offline backbones (:mod:`mmsft.models.tiny`) need a tokenizer that behaves like the real Qwen2 /
Qwen2-VL one - same special tokens, same byte-level pre-tokenisation, a Qwen-style chat template - but is small
(about a thousand entries) and needs no download. :func:`build_tiny_tokenizer` trains one with the ``tokenizers``
library on a synthetic English corpus generated from a seed. The corpus includes the closed answer sets of the
shapes-world QA (:mod:`mmsft.data.shapes`), so answers such as ``red`` or ``triangle`` are single tokens.

Layout of the vocabulary (ids are stable for a given ``vocab_size`` and ``seed``):

* ids ``0 .. len(SPECIAL_TOKENS)-1``: the special tokens, in the order of :data:`SPECIAL_TOKENS`;
* then the 256 byte symbols and the learned merges;
* then, only when ``reserved_tokens > 0``: ``<|act_0|> .. <|act_{n-1}|>`` as ordinary (non-special) added tokens, so
  they are the *last* ids of the vocabulary (OpenVLA reserves the last 256 ids for action bins).
"""

from __future__ import annotations

import random
from typing import Iterator

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
)
"""Special tokens of the tiny tokenizer; the first seven are the ones the real Qwen2-VL processor uses."""

REASONING_TOKENS: tuple[str, ...] = SPECIAL_TOKENS[7:]
"""``<think> </think> <answer> </answer>``: atomic, but not skipped when decoding with ``skip_special_tokens``."""

ACTION_TOKEN_FORMAT = "<|act_{}|>"
"""Text of the reserved action-bin tokens (bin ``i`` is ``<|act_i|>``)."""

# Qwen2's pre-tokenisation regex (contractions, letters, single digits, punctuation runs, newlines, spaces).
_QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2-VL style chat template: a default system turn, image/video parts become vision placeholders that the
# processor expands to the right number of pad tokens, and the generation prompt opens an assistant turn.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    + DEFAULT_SYSTEM_PROMPT
    + "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Closed answer sets of the shapes world (kept in sync with mmsft.data.shapes; a test checks it).
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black", "gray", "pink", "brown", "cyan")
SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross", "hexagon", "ring")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DIRECTIONS = ("left", "right", "up", "down")
YES_NO = ("yes", "no")

_QUESTION_LINES = (
    "What colour is the shape?",
    "What color is the shape?",
    "What shape is shown?",
    "What shape is in the picture?",
    "How many shapes are there?",
    "How many shapes are in the image?",
    "Which direction does the shape move?",
    "In which direction is the shape moving?",
    "What colour is the moving shape?",
    "Answer with one word.",
    "Think step by step, then give the answer.",
    "Picture 1: Video 1:",
)

_COMMON_WORDS = (
    "the a an is are was were be been it this that these those there here what which who how why when where "
    "of in on at to from with by for and or but not no yes do does did can could will would should may might "
    "shape shapes colour color image picture video frame frames clip object objects moving moves move moved "
    "motion direction left right up down top bottom middle centre center side corner background plain small "
    "large big tiny bright dark light many few number count counting single one word answer question think "
    "step reason because so then first next last finally see look shown showing appears contains inside "
    "robot arm gripper open close pick place put push pull lift drop grasp block cube bowl plate table drawer "
    "cabinet stove mug cup box red green blue yellow purple orange white black gray pink brown cyan "
    "you are helpful assistant system user task goal action actions state step steps puzzle grid cell row "
    "column board move valid invalid solve solved solution correct wrong true false good bad best"
).split()


def tiny_corpus(seed: int = 0, num_lines: int = 3000) -> Iterator[str]:
    """Yield ``num_lines`` deterministic synthetic English lines for BPE training.

    The lines mix common words, the shapes-world answer words (bare, space-prefixed and capitalised, so each
    form becomes one token), question templates and the chat-template scaffolding.
    """
    rng = random.Random(seed)
    answers = COLOURS + SHAPES + NUMBERS + DIRECTIONS + YES_NO
    vocabulary = _COMMON_WORDS + list(answers)
    for word in answers:  # every answer word alone on a line, many times, in each surface form
        for _ in range(8):
            yield word
            yield word.capitalize()
            yield f"<answer>{word}</answer>"
    for _ in range(40):
        yield "<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>"
        yield "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What shape is shown?<|im_end|>"
        yield "<|im_start|>assistant\n<think>\nI see it.\n</think>\n<answer>red</answer><|im_end|>"
        for question in _QUESTION_LINES:
            yield question
    for _ in range(num_lines):
        kind = rng.random()
        if kind < 0.3:
            yield f"The {rng.choice(COLOURS)} {rng.choice(SHAPES)} moves {rng.choice(DIRECTIONS)}."
        elif kind < 0.5:
            yield f"There are {rng.choice(NUMBERS)} {rng.choice(COLOURS)} {rng.choice(SHAPES)}s in the picture."
        else:
            words = [rng.choice(vocabulary) for _ in range(rng.randint(4, 14))]
            line = " ".join(words)
            digits = " ".join(str(rng.randint(0, 99)) for _ in range(rng.randint(0, 3)))
            yield (line[:1].upper() + line[1:] + (" " + digits if digits else "") + rng.choice(".?!,:;"))


def train_tiny_backend(vocab_size: int = 1024, seed: int = 0, reserved_tokens: int = 0):
    """Train the raw ``tokenizers.Tokenizer`` (see :func:`build_tiny_tokenizer` for the arguments)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 256 + 16:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: expected at least {len(SPECIAL_TOKENS) + 256 + 16} "
            f"({len(SPECIAL_TOKENS)} special tokens + 256 bytes + a few merges)"
        )
    if reserved_tokens < 0:
        raise ValueError(f"reserved_tokens must be >= 0, got {reserved_tokens}")

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    # Special tokens inside corpus lines must not be split into bytes while training: register them first.
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer.train_from_iterator(tiny_corpus(seed), trainer=trainer)
    if tokenizer.get_vocab_size() < vocab_size - 16:
        raise ValueError(
            f"vocab_size={vocab_size} is more than the synthetic corpus supports: BPE stopped at "
            f"{tokenizer.get_vocab_size()} entries; use vocab_size <= {tokenizer.get_vocab_size()}"
        )
    # The reasoning tags are ordinary added tokens (as in Qwen3): never split, but kept by
    # ``decode(..., skip_special_tokens=True)`` so that answer parsers and rewards see them.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in REASONING_TOKENS])
    if reserved_tokens:
        tokenizer.add_tokens(
            [AddedToken(ACTION_TOKEN_FORMAT.format(i), special=False, normalized=False) for i in range(reserved_tokens)]
        )
    for index, token in enumerate(SPECIAL_TOKENS):
        if tokenizer.token_to_id(token) != index:
            raise RuntimeError(f"special token {token!r} got id {tokenizer.token_to_id(token)}, expected {index}")
    return tokenizer


def wrap_tiny_backend(backend):
    """Wrap a trained backend as a Qwen-style ``transformers.PreTrainedTokenizerFast``.

    ``eos_token="<|im_end|>"``, ``pad_token="<|endoftext|>"``, no BOS, the Qwen-VL special tokens as additional
    special tokens (the reasoning tags stay ordinary added tokens), :data:`CHAT_TEMPLATE`, right padding.
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=[t for t in SPECIAL_TOKENS[:7] if t not in ("<|endoftext|>", "<|im_end|>")],
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
        padding_side="right",
        split_special_tokens=False,
        clean_up_tokenization_spaces=False,
    )


def build_tiny_tokenizer(vocab_size: int = 1024, seed: int = 0, reserved_tokens: int = 0):
    """Train and return a Qwen-style ``PreTrainedTokenizerFast`` with about ``vocab_size`` learned entries.

    Args:
        vocab_size: target size of the BPE vocabulary (special tokens and bytes included), before the reserved
            action tokens. The corpus supports about 1,020 entries (the default 1024 gives 1021); asking for
            clearly more than BPE can learn raises ``ValueError``.
        seed: seed of the synthetic corpus; the result is deterministic for a given (vocab_size, seed).
        reserved_tokens: number of ``<|act_i|>`` tokens appended as the last ids (0 for none).

    Returns:
        The tokenizer of :func:`wrap_tiny_backend`.
    """
    return wrap_tiny_backend(train_tiny_backend(vocab_size, seed, reserved_tokens))


__all__ = [
    "ACTION_TOKEN_FORMAT",
    "CHAT_TEMPLATE",
    "COLOURS",
    "DIRECTIONS",
    "NUMBERS",
    "SHAPES",
    "REASONING_TOKENS",
    "SPECIAL_TOKENS",
    "build_tiny_tokenizer",
    "tiny_corpus",
    "train_tiny_backend",
    "wrap_tiny_backend",
]
