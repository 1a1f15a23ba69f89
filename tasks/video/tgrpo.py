"""Stage ``video_rl``: the RL producer with VideoRFT's settings and Video-R1's T-GRPO (Feng et al., arXiv 2503.21776,
code tulerfeng/Video-R1 ``grpo_trainer.py``).

T-GRPO, for every video prompt of a rollout batch: besides the G completions on the ordered frames, sample
``G̃`` completions (default G/2) on a random permutation of the frames; with p and p̃ the mean accuracies of the
two groups, if ``p ≥ ratio · p̃`` (ratio 0.8) add ``α`` (0.3) to the accuracy of every ordered completion whose
accuracy is > 0.1 (the total reward grows by α times the accuracy reward's weight; logged as ``reward/tgrpo_bonus``,
``reward/<accuracy reward>`` stays the raw accuracy). The shuffled group only
measures p̃: it is never trained on. Image prompts are unaffected.

The permutation acts on the prompt's encoded frames (:func:`permute_video_frames`): Qwen-VL's processor normalises
each frame independently and packs them into ``temporal_patch_size``-frame patches, so unpacking, permuting and
repacking ``pixel_values_videos`` gives exactly what the processor returns for the permuted frames, without
decoding the video again.

Arguments (config ``stage_args``, :class:`VideoRLArgs`): ``tgrpo`` (the switch), ``tgrpo_alpha``, ``tgrpo_ratio``,
``tgrpo_group_size``, ``accuracy_reward``, and the semantic-reward encoder settings (``semantic_encoder`` — a SigLIP
folder, empty for the embedded tiny one — ``semantic_replicate_frame_bug``, ``semantic_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mmsft.config import build_args
from mmsft.models.adapters import Encoded
from mmsft.rewards import compute_rewards
from mmsft.rollout import SamplingParams
from mmsft.train.rl_producer import RL_FIELDS, Group, RLProducer
from mmsft.train.stage import StageContext, producer_entry, register_producer
from tasks.video.rewards import ACCURACY_GATE


def _arg(default: Any, text: str, **bounds: Any) -> Any:
    return field(default=default, metadata={"help": text, **bounds})


@dataclass
class VideoRLArgs:
    """Arguments of stage ``video_rl`` (config ``stage_args``)."""

    tgrpo: bool = _arg(False, "T-GRPO (Video-R1): an extra group per video prompt on shuffled frames; bonus rule.")
    tgrpo_alpha: float = _arg(0.3, "Bonus α added to the accuracy of correct ordered completions.", ge=0)
    tgrpo_ratio: float = _arg(0.8, "The bonus applies when ordered accuracy ≥ ratio × shuffled accuracy.", ge=0)
    tgrpo_group_size: int = _arg(0, "Completions on the shuffled frames (0: half of rl.group_size, at least 1).",
                                 ge=0)
    accuracy_reward: str = _arg("videorft_accuracy", "The reward (one of rl.rewards) whose values are the accuracy.")
    semantic_encoder: str = _arg("", "SigLIP folder of the videorft_semantic reward (empty: the embedded tiny one).")
    semantic_replicate_frame_bug: bool = _arg(False, "Feed the encoder the reference code's colour-wrapped frames.")
    semantic_frames: int = _arg(16, "Frames the semantic reward samples per video (VideoRFT: 16).", ge=1)


def _video_geometry(processor: Any) -> tuple[int, int, int]:
    video = getattr(processor, "video_processor", None) or getattr(processor, "image_processor", None)
    return int(video.patch_size), int(video.merge_size), int(video.temporal_patch_size)


def permute_video_frames(encoded: Encoded, processor: Any, generator: np.random.Generator) -> tuple[Encoded, list]:
    """A copy of ``encoded`` whose videos' frames are randomly permuted (one permutation per video); returns it and
    the permutations. The rows of ``pixel_values_videos`` are ``(t, h/m, w/m, m, m)`` patches of
    ``(C, tps, p, p)`` pixels (transformers' Qwen2-VL video processor ``patchify``)."""
    if "pixel_values_videos" not in encoded.mm:
        return encoded, []
    patch, merge, tps = _video_geometry(processor)
    pixels, grids = encoded.mm["pixel_values_videos"], encoded.mm["video_grid_thw"]
    pieces, perms, start = [], [], 0
    for grid in grids.tolist():
        t, h, w = grid
        rows = t * h * w
        block = pixels[start:start + rows]
        channels = block.shape[1] // (tps * patch * patch)
        x = block.reshape(t, h // merge, w // merge, merge, merge, channels, tps, patch, patch)
        frames = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(t * tps, channels, h * patch, w * patch)
        order = generator.permutation(t * tps)
        frames = frames[torch.as_tensor(order)]
        x = frames.reshape(t, tps, channels, h // merge, merge, patch, w // merge, merge, patch)
        pieces.append(x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(rows, -1))
        perms.append(order.tolist())
        start += rows
    mm = dict(encoded.mm)
    mm["pixel_values_videos"] = torch.cat(pieces + [pixels[start:]], dim=0)
    return Encoded(encoded.sample_id, encoded.input_ids, encoded.loss_mask, mm, encoded.truncated,
                   encoded.token_weights), perms


def tgrpo_bonus(ordered: list[float], shuffled: list[float], alpha: float = 0.3, ratio: float = 0.8) -> list[float]:
    """Video-R1's rule on one prompt: ``alpha`` for each ordered completion with accuracy > 0.1 when
    ``mean(ordered) ≥ ratio · mean(shuffled)``, else nothing."""
    if not ordered or not shuffled or float(np.mean(ordered)) < ratio * float(np.mean(shuffled)):
        return [0.0] * len(ordered)
    return [alpha if a > ACCURACY_GATE else 0.0 for a in ordered]


class VideoRLProducer(RLProducer):
    """:class:`~mmsft.train.rl_producer.RLProducer` plus T-GRPO (see the module docstring)."""

    def __init__(self, ctx: StageContext) -> None:
        super().__init__(ctx)
        self.args: VideoRLArgs = build_args(producer_entry("video_rl"), ctx.cfg.stage_args, "stage_args")
        from tasks.video import semantic

        semantic.configure(self.args.semantic_encoder or None,
                           replicate_frame_bug=self.args.semantic_replicate_frame_bug,
                           frames=self.args.semantic_frames, device=str(ctx.device))
        if self.args.tgrpo and self.args.accuracy_reward not in self.rewards:
            raise ValueError(f"stage_args.accuracy_reward {self.args.accuracy_reward!r} is not one of rl.rewards "
                             f"{self.rewards}; T-GRPO needs the accuracy reward")
        self._tgrpo_stats: dict[str, list[float]] = {}

    def _accuracy_weight(self) -> float:
        index = self.rewards.index(self.args.accuracy_reward)
        return self.weights[index] if self.weights else 1.0

    def _sample_groups(self, indices: list[int], round_index: int) -> list[Group]:
        groups = super()._sample_groups(indices, round_index)
        if not self.args.tgrpo:
            return groups
        video = [g for g, group in enumerate(groups) if self.samples[group[0]].media("video")]
        if not video:
            return groups
        rl = self.cfg.rl
        size = self.args.tgrpo_group_size or max(1, rl.group_size // 2)
        seed = self.cfg.train.seed * 1_000_003 + self.state["rollout_batches"] * 101 + round_index
        generator = np.random.default_rng([seed, 7])
        prompts = [permute_video_frames(self._prompt(groups[g][0]), self.adapter.processor, generator)[0]
                   for g in video]
        params = SamplingParams(n=size, max_new_tokens=self.max_new_tokens, temperature=rl.temperature,
                                top_p=rl.top_p, top_k=rl.top_k,
                                stop_strings=tuple(s for s in rl.stop_strings.split(",") if s), seed=seed + 17,
                                vocab_subset=self.vocab_subset, allow_stop=self.allow_stop)
        rollouts = self.engine.generate(prompts, params)
        samples = [self.samples[groups[video[r.prompt_index]][0]] for r in rollouts]
        shuffled = compute_rewards([self.args.accuracy_reward], None, samples, [r.text for r in rollouts],
                                   completion_lengths=[len(r.completion_ids) for r in rollouts]).total
        weight, name = self._accuracy_weight(), self.args.accuracy_reward
        stats = self._tgrpo_stats
        for k, g in enumerate(video):
            index, members, totals, parts = groups[g]
            ordered = list(parts[name])
            bonus = tgrpo_bonus(ordered, shuffled[k * size:(k + 1) * size], self.args.tgrpo_alpha,
                                self.args.tgrpo_ratio)
            for i, b in enumerate(bonus):
                totals[i] += weight * b
            parts["tgrpo_bonus"] = [weight * b for b in bonus]  # logged as reward/tgrpo_bonus; accuracy stays raw
            stats.setdefault("tgrpo/ordered_accuracy", []).append(float(np.mean(ordered)))
            stats.setdefault("tgrpo/shuffled_accuracy", []).append(float(np.mean(shuffled[k * size:(k + 1) * size])))
            stats.setdefault("tgrpo/bonus_groups", []).append(float(any(bonus)))
        return groups

    def _collect(self) -> tuple[list[Group], dict[str, float]]:
        groups, stats = super()._collect()
        stats.update({k: float(np.mean(v)) for k, v in self._tgrpo_stats.items()})
        self._tgrpo_stats = {}
        return groups, stats


@register_producer("video_rl", provides=RL_FIELDS, args=VideoRLArgs)
def video_rl_producer(ctx: StageContext) -> VideoRLProducer:
    """RL on video/image prompts with VideoRFT's reward settings and optional T-GRPO (Video-R1)."""
    return VideoRLProducer(ctx)


__all__ = ["VideoRLArgs", "VideoRLProducer", "permute_video_frames", "tgrpo_bonus", "video_rl_producer"]
