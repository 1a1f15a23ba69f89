"""The embedded semantic-reward encoder: a tiny SigLIP (Zhai et al., arXiv 2303.15343) built offline from
transformers' ``SiglipConfig`` and trained with SigLIP's pairwise sigmoid loss on the video world
(:mod:`tasks.video.world`): a random frame of a clip against the clip's description ("The video shows a red
circle and a blue square. The red circle starts moving at 1.5 seconds and moves left fast. ..."), in-batch
negatives. It stands in for ``google/siglip-so400m-patch14-384`` in VideoRFT's semantic-consistency reward
(arXiv 2505.12434) on the embedded data: a reasoning text that names the clip's objects scores higher than one that
names other objects.

Deterministic for a given seed (one torch thread, seeded data and initialisation). The tokenizer is the tiny
byte-level BPE of :mod:`mmsft.models.tiny_tokenizer` (text side truncated at 64 tokens, like SigLIP's).
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from tasks.video.world import FRAMES, SIZE, Clip, sample_clip

TEXT_LENGTH = 64
MODEL_SIZE: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                              "num_attention_heads": 2}
PATCH = 8


def caption(clip: Clip, rng: random.Random) -> str:
    """The clip's description; with probability 1/2 only a prefix of its sentences (robust to truncation)."""
    sentences = clip.description()
    if rng.random() < 0.5:
        sentences = sentences[: rng.randint(1, len(sentences))]
    return " ".join(sentences)


def build_model(vocab_size: int, pad_id: int, eos_id: int, seed: int) -> Any:
    import torch
    from transformers import SiglipConfig, SiglipModel

    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config={**MODEL_SIZE, "vocab_size": vocab_size, "max_position_embeddings": TEXT_LENGTH,
                     "pad_token_id": pad_id, "eos_token_id": eos_id, "bos_token_id": None, "projection_size": 64},
        vision_config={**MODEL_SIZE, "image_size": SIZE, "patch_size": PATCH},
    )
    model = SiglipModel(config)
    with torch.no_grad():  # SigLIP's initialisation of the sigmoid loss (t' = log 10, b = -10)
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    return model


def _batch(rng: random.Random, size: int) -> tuple[list[np.ndarray], list[str]]:
    frames, texts = [], []
    for _ in range(size):
        clip = sample_clip(rng, with_word=rng.random() < 0.3)
        frames.append(clip.frame(rng.randrange(FRAMES)))
        texts.append(caption(clip, rng))
    return frames, texts


def build_tiny_siglip(out_dir: str | Path, steps: int = 1500, batch_size: int = 48, lr: float = 1e-3,
                      seed: int = 0, tokenizer_dir: str | Path | None = None, eval_clips: int = 64) -> dict[str, Any]:
    """Build, train and save the tiny SigLIP into ``out_dir``; returns the build report (also saved as
    ``build_report.json``: steps, wall time, held-out frame→text retrieval accuracy and reward gap)."""
    import torch
    from transformers import AutoTokenizer, SiglipImageProcessor

    torch.set_num_threads(1)
    root = Path(__file__).resolve().parents[2]
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir or root / "assets" / "shapes_base"))
    tokenizer.model_max_length = TEXT_LENGTH
    tokenizer.padding_side = "right"
    processor = SiglipImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    model = build_model(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=max(0.05, 2.0 / steps))
    rng = random.Random(f"siglip-train-{seed}")
    started, losses = time.perf_counter(), []
    model.train()
    for _ in range(steps):
        frames, texts = _batch(rng, batch_size)
        ids = tokenizer(texts, padding="max_length", truncation=True, max_length=TEXT_LENGTH, return_tensors="pt")
        pixels = processor(images=frames, return_tensors="pt")["pixel_values"]
        out = model(input_ids=ids["input_ids"], pixel_values=pixels, return_loss=True)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(out.loss.detach()))
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    processor.save_pretrained(str(out_dir))
    report = {"seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
              "wall_time_s": round(time.perf_counter() - started, 1),
              "final_loss": round(float(np.mean(losses[-50:])), 4), "model": MODEL_SIZE, "patch_size": PATCH,
              "image_size": SIZE, "text_length": TEXT_LENGTH, "torch": torch.__version__}
    report.update(evaluate_encoder(out_dir, seed, eval_clips))
    (out_dir / "build_report.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate_encoder(folder: str | Path, seed: int = 0, clips: int = 64) -> dict[str, float]:
    """Held-out checks: top-1 frame→description retrieval among ``clips`` clips, and the mean semantic reward
    ``min(1, 2·max(cos, 0))`` (over all frames) of a clip's own description vs another clip's."""
    from tasks.video.semantic import SiglipEncoder, similarity_reward

    encoder = SiglipEncoder(folder)
    rng = random.Random(f"siglip-eval-{seed}")
    held_out = [sample_clip(rng, with_word=rng.random() < 0.3) for _ in range(clips)]
    texts = encoder.embed_text([" ".join(c.description()) for c in held_out])
    frames = [encoder.embed_frames(c.frames()) for c in held_out]
    hits, own, other = 0, [], []
    for i, embeds in enumerate(frames):
        sims = (embeds.mean(0)) @ texts.T
        hits += int(np.argmax(sims) == i)
        own.append(similarity_reward(embeds, texts[i]))
        other.append(similarity_reward(embeds, texts[(i + 1) % clips]))
    return {"retrieval_top1": round(hits / clips, 4), "reward_own_description": round(float(np.mean(own)), 4),
            "reward_other_description": round(float(np.mean(other)), 4), "eval_clips": clips}


__all__ = ["build_model", "build_tiny_siglip", "caption", "evaluate_encoder"]
