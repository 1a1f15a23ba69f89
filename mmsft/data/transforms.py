"""Sample transforms that rewrite a training example before it is encoded.

Masked reconstruction (Pan et al., "Diffusion-Inspired Masked Fine-Tuning for Knowledge Injection",
arXiv 2510.09885): the prompt gets, after the original request, an instruction and a copy of the target in which a
random fraction r of its tokens is replaced by a mask string; the target stays the full original text, trained with
plain cross-entropy. r ~ U(ratio_min, ratio_max) per example (the paper's v5: U(0.05, 0.95); its earlier version used
a fixed 0.5) and the mask is redrawn every epoch (the SFT producer reseeds per epoch and sample). Images and videos
in the prompt are never touched; only the text target is masked, one mask string per masked token so the length of
every gap is visible (as in a masked diffusion LM). The exact template and mask string of the paper could not be
verified; both are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mmsft.data.schema import DataError, Message, Part, Sample

DEFAULT_TEMPLATE = ("Reconstruct the original text from the masked copy below; each {mask} stands for one missing "
                    "token.\n\n{masked}")


@dataclass
class MaskedReconstructionArgs:
    """Arguments of the masked-reconstruction transform (and of the ``masked_ft`` loss that applies it)."""

    ratio_min: float = field(default=0.05, metadata={"help": "Lower end of the per-example mask ratio r ~ U(min, max) "
                                                              "(paper v5: 0.05).", "ge": 0, "le": 1})
    ratio_max: float = field(default=0.95, metadata={"help": "Upper end of the mask ratio (paper v5: 0.95; a fixed "
                                                              "ratio: min = max).", "ge": 0, "le": 1})
    mask_token: str = field(default="<mask>", metadata={"help": "String that replaces each masked token."})
    template: str = field(default=DEFAULT_TEMPLATE, metadata={"help": "Text appended to the prompt; {masked} is the "
                                                                      "masked target, {mask} the mask string."})


def _tokens(adapter: Any, text: str) -> list[int]:
    return list(adapter.tokenizer(text, add_special_tokens=False)["input_ids"])


def mask_text(text: str, adapter: Any, ratio: float, mask_token: str, rng: np.random.Generator) -> tuple[str, int]:
    """``text`` with round(ratio·n) of its n tokens (the model's tokenizer) replaced by ``mask_token``; returns the
    masked text and the number of masked tokens."""
    ids = _tokens(adapter, text)
    count = int(round(ratio * len(ids)))
    masked = set(rng.choice(len(ids), size=count, replace=False).tolist()) if count else set()
    pieces, run = [], []
    for position, token in enumerate(ids):
        if position in masked:
            if run:
                pieces.append(adapter.tokenizer.decode(run))
                run = []
            pieces.append(mask_token)
        else:
            run.append(token)
    if run:
        pieces.append(adapter.tokenizer.decode(run))
    return "".join(pieces), count


def masked_reconstruction(sample: Sample, rng: np.random.Generator, adapter: Any,
                          args: MaskedReconstructionArgs) -> Sample:
    """The masked-reconstruction version of ``sample``; see the module docstring."""
    if args.ratio_min > args.ratio_max:
        raise DataError(f"masked reconstruction: ratio_min {args.ratio_min} > ratio_max {args.ratio_max}")
    target = sample.target
    if target is None or not target.text:
        raise DataError(f"{sample.where()}: masked fine-tuning needs a text target (a final assistant message)")
    ratio = float(rng.uniform(args.ratio_min, args.ratio_max)) if args.ratio_max > args.ratio_min else args.ratio_min
    masked, _ = mask_text(target.text, adapter, ratio, args.mask_token, rng)
    note = args.template.replace("{mask}", args.mask_token).replace("{masked}", masked)
    prompt = list(sample.prompt_messages)
    if prompt and prompt[-1].role == "user":
        last = prompt[-1]
        prompt[-1] = Message("user", (*last.parts, Part("text", text="\n\n" + note)))
    else:
        prompt.append(Message("user", (Part("text", text=note),)))
    return replace(sample, messages=[*prompt, target])


def masked_reconstruction_transform(args: MaskedReconstructionArgs):
    """A ``(sample, rng, adapter) -> sample`` transform bound to ``args`` (for the SFT producer)."""

    def transform(sample: Sample, rng: np.random.Generator, adapter: Any) -> Sample:
        return masked_reconstruction(sample, rng, adapter, args)

    return transform
