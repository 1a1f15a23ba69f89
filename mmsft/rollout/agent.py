"""The agent loop: a policy plays batched environment episodes turn by turn.

Per turn, for every slot still playing: the task renders the observation into a prompt (:class:`TurnPrompt`); the
engine samples the policy's answer for all slots at once (constrained to the task's vocabulary subset, e.g. a VLA's
action bins); the task parses each answer into env actions with a counted outcome; the batched env steps. An episode
ends when the env terminates or truncates it, when the task says so (single-turn tasks), when the turn budget
``env.max_turns`` runs out, or when the next turn would not fit the token budget (the last two mark it
``truncated``). GRPO groups share a level: slot ``i`` plays ``seeds[i // group_size]``.

Trajectories become training sequences without re-tokenising anything the policy wrote:

* ``concat_turns`` (default): one sequence per episode, the conversation ``prompt₁ answer₁ prompt₂ answer₂``….
  Each later prompt is the chat-template continuation after the exact sampled ids
  (:meth:`ModalityAdapter.encode_continuation`), and the next turn is generated from that whole context, so the
  sequence the trainer scores is token for token the one the policy sampled. The loss mask is True exactly on the
  sampled answer tokens; observations, prompts and template tokens are never supervised.
* otherwise (Markovian agents, VLAs): each turn is prompted with its own observation and becomes its own sequence
  ``prompt_t answer_t``, carrying the episode's reward.

The episode return (sum of per-turn env rewards plus the task's format penalties) is the sequence reward (or 1/0
success with ``env.episode_reward=success``). Multi-turn rollouts as in RAGEN / verl-agent (arXiv 2504.20073,
2505.10978); turn-level credit assignment (GiGPO) can be added as an advantage estimator over the same records.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmsft.data.schema import Message, Part, Sample
from mmsft.models.adapters import Encoded, ModalityAdapter
from mmsft.models.adapters.base import CONTINUATION_MARK
from mmsft.rollout.engine import RolloutEngine, SamplingParams
from mmsft.rollout.env_config import EnvConfig
from mmsft.rollout.envs import BatchedEnv, step_chunks
from mmsft.rollout.tasks import EnvTask, GeneratedTurn, TurnPrompt


@dataclass
class TurnRecord:
    """One turn of one episode, for transcripts and metrics."""

    turn: int
    prompt: str
    output: str
    outcome: str
    reward: float
    action: Any = None
    new_tokens: int = 0


@dataclass
class TrainingSequence:
    """A training sequence: tokens with the loss mask on the policy's own tokens, their sampler log-probs and
    optional per-policy-token fields (``teacher_logp`` (P,), ``teacher_dist`` (P, V_sub) log-probabilities)."""

    encoded: Encoded
    sampler_logp: torch.Tensor
    fields: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Episode:
    """One played episode: its sequences, turns, return and how it ended."""

    slot: int
    group: int
    seed: int
    sequences: list[TrainingSequence] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    episode_return: float = 0.0
    success: bool = False
    end: str = ""  # terminated | env_truncated | task | turn_budget | token_budget | start_failed
    frames: list[np.ndarray] = field(default_factory=list)
    fault: str = ""  # why the episode could not start (end == "start_failed"), from the env's info

    @property
    def started(self) -> bool:
        """False when the env could not start the episode (no turn was played; it has no sequences)."""
        return self.end != "start_failed"

    @property
    def done(self) -> bool:
        return bool(self.end)

    @property
    def truncated(self) -> bool:
        """Cut off by the agent's turn or token budget, or by the env's own step limit."""
        return self.end in ("turn_budget", "token_budget", "env_truncated")

    @property
    def parse_failures(self) -> int:
        return sum(t.outcome != "ok" for t in self.turns)

    def reward(self, mode: str) -> float:
        return float(self.success) if mode == "success" else self.episode_return


@dataclass
class _Context:
    """The growing token sequence of a concatenated trajectory (prompt segments and sampled answers)."""

    segments: list[Encoded] = field(default_factory=list)
    logp: list[torch.Tensor] = field(default_factory=list)
    fields: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    closed: bool = True

    def add(self, encoded: Encoded) -> None:
        self.segments.append(encoded)

    def __len__(self) -> int:
        return sum(len(x) for x in self.segments)

    def encoded(self, sample_id: str) -> Encoded:
        return Encoded(sample_id, torch.cat([s.input_ids for s in self.segments]),
                       torch.cat([s.loss_mask for s in self.segments]), merge_mm([s.mm for s in self.segments]))


def merge_mm(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate per-segment media tensors (pixel rows, grids) in order, as one sample holding every image."""
    parts = [p for p in parts if p]
    keys = sorted({k for p in parts for k in p})
    return {k: torch.cat([p[k] for p in parts if k in p], dim=0) for k in keys}


def _policy_tokens(ids: torch.Tensor) -> Encoded:
    return Encoded("", ids.clone(), torch.ones(len(ids), dtype=torch.bool))


class AgentLoop:
    """Plays episodes of one task with one policy; see the module docstring."""

    def __init__(self, task: EnvTask, adapter: ModalityAdapter, engine: RolloutEngine, cfg: EnvConfig,
                 max_length: int, split_name: str = "train") -> None:
        if cfg.max_turns < 1:
            raise ValueError(f"env.max_turns={cfg.max_turns}: expected >= 1")
        self.task, self.adapter, self.engine, self.cfg = task, adapter, engine, cfg
        self.max_length = cfg.max_episode_tokens or max_length
        self.split_name = split_name
        self._envs: dict[int, BatchedEnv] = {}
        self.spec = task.generation()
        scored = adapter.vocab_subset()
        sampled = self.spec.vocab_subset
        if scored is not None and (sampled is None or not set(sampled) <= set(scored.tolist())):
            raise ValueError(f"task {task.name!r} samples outside the adapter's vocab_subset ({len(scored)} ids) that "
                             "the trainer scores; constrain generation to it (GenerationSpec.vocab_subset)")
        self._subset_index = {int(t): k for k, t in enumerate(scored.tolist())} if scored is not None else {}

    def env(self, num_envs: int) -> BatchedEnv:
        if num_envs not in self._envs:
            self._envs[num_envs] = self.task.make_env(num_envs)
        return self._envs[num_envs]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    # ------------------------------------------------------------------------------------------------------------
    def run(self, seeds: list[int], group_size: int, *, temperature: float = 1.0, top_p: float = 1.0,
            top_k: int = 0, seed: int = 0, max_turns: int | None = None, frames_for: int = 0,
            split: str | None = None, episode_streams: bool = False) -> list[Episode]:
        """Play ``len(seeds) * group_size`` episodes to the end; ``temperature=0`` is greedy decoding.

        ``frames_for``: keep rendered frames of the first N episodes (GIF logs). ``episode_streams``: every episode
        samples from its own random stream (``SamplingParams.row_seeds`` from ``seed``, the slot and the turn), so an
        episode's outcome depends on its level and its stream only — two policies evaluated with the same ``seed``
        are compared episode by episode, whatever else is in the batch.
        """
        turns = max_turns or self.cfg.max_turns
        split = split or self.split_name
        n = len(seeds) * group_size
        env = self.env(n)
        observations, infos = env.reset(list(seeds), group_size)
        self.task.begin_episodes(env, observations, infos)
        episodes = [Episode(i, i // group_size, int(seeds[i // group_size])) for i in range(n)]
        for i, (observation, info) in enumerate(zip(observations, infos)):
            if observation is None and info.get("start_failed"):  # see mmsft.rollout.envs: that episode is over
                episodes[i].end, episodes[i].fault = "start_failed", str(info["start_failed"])
        contexts = [_Context() for _ in range(n)]
        self._record_frames(env, observations, episodes, frames_for)
        with tempfile.TemporaryDirectory(prefix="mmsft-agent-") as scratch:
            for turn in range(turns):
                playing = [i for i in range(n) if not episodes[i].done]
                if not playing:
                    break
                prompts, slots, shown = [], [], []
                for i in playing:
                    shown_prompt = self.task.observe(env, i, observations[i], infos[i], turn)
                    encoded = self._prompt(episodes[i], contexts[i], shown_prompt, turn, Path(scratch), split)
                    if len(encoded) + self.spec.max_new_tokens > self.max_length:
                        episodes[i].end = "token_budget"
                        if self.cfg.concat_turns and turn > 0:
                            contexts[i].segments.pop()  # the unanswered prompt is not part of the trajectory
                        continue
                    prompts.append(encoded)
                    slots.append(i)
                    shown.append(shown_prompt.text)
                if not slots:
                    break
                row_seeds = (tuple((seed * 1_000_003 + i) * 1_009 + turn for i in slots) if episode_streams
                             else None)
                params = SamplingParams(n=1, max_new_tokens=self.spec.max_new_tokens, temperature=temperature,
                                        top_p=top_p, top_k=top_k, seed=seed * 1_000_003 + turn,
                                        vocab_subset=self.spec.vocab_subset, allow_stop=self.spec.allow_stop,
                                        row_seeds=row_seeds)
                rollouts = self.engine.generate(prompts, params)
                chunks: list[list[Any] | None] = [None] * n
                actions = {}
                for i, prompt, text, rollout in zip(slots, prompts, shown, rollouts):
                    output = GeneratedTurn(rollout.completion_ids, rollout.text, rollout.truncated)
                    action = self.task.act(i, output, infos[i])
                    teacher = self.task.teacher_logprobs(i, output)
                    self._append(episodes[i], contexts[i], prompt, rollout, teacher, turn, split)
                    episodes[i].turns.append(TurnRecord(turn, text, rollout.text, action.outcome, 0.0,
                                                        action.summary, len(rollout.completion_ids)))
                    chunks[i] = list(action.actions)
                    actions[i] = action
                result = step_chunks(env, chunks)
                for i in slots:
                    action, episode = actions[i], episodes[i]
                    reward = float(result.rewards[i]) + action.penalty
                    episode.turns[-1].reward = reward
                    episode.episode_return += reward
                    if result.observations[i] is not None:
                        observations[i] = result.observations[i]
                    if result.infos[i]:  # a slot that did not move keeps its info
                        infos[i] = result.infos[i]
                    episode.success = self.task.success(infos[i])
                    if result.terminated[i]:
                        episode.end = "terminated"
                    elif result.truncated[i]:
                        episode.end = "env_truncated"
                    elif action.end_episode or self.cfg.mode == "single_turn":
                        episode.end = "task"
                    elif turn == turns - 1:
                        episode.end = "turn_budget"
                self._record_frames(env, observations, episodes, frames_for, only=slots)
        for i, episode in enumerate(episodes):
            if not episode.end:
                episode.end = "turn_budget"
            if self.cfg.concat_turns and contexts[i].logp:
                episode.sequences = [self._concat_sequence(episode, contexts[i], split)]
        return episodes

    # ------------------------------------------------------------------------------------------------------------
    def _sample_id(self, episode: Episode, split: str, turn: int | None = None) -> str:
        base = f"{self.task.name}/{split}/seed{episode.seed}/g{episode.group}/ep{episode.slot}"
        return base if turn is None else f"{base}/t{turn}"

    def _message(self, prompt: TurnPrompt, scratch: Path, key: str) -> Message:
        # frames stay in memory (Part.array): the adapter resizes them exactly as it would the same PNG file
        parts = [Part("image", array=np.asarray(image, dtype=np.uint8)) for image in prompt.images]
        parts.append(Part("text", text=prompt.text))
        return Message("user", tuple(parts))

    def _prompt(self, episode: Episode, context: _Context, prompt: TurnPrompt, turn: int, scratch: Path,
                split: str) -> Encoded:
        sample_id = self._sample_id(episode, split, turn)
        message = self._message(prompt, scratch, f"{episode.slot}-{turn}")
        if not self.cfg.concat_turns or turn == 0:
            encoded = self.adapter.encode(Sample(sample_id, [message]), with_target=False)
            if self.cfg.concat_turns:
                context.add(encoded)
            return encoded
        carrier = Sample(sample_id, [Message("user", (Part("text", text="."),)),
                                     Message("assistant", (Part("text", text=CONTINUATION_MARK),)), message])
        context.add(self.adapter.encode_continuation(carrier, closed=context.closed))
        return context.encoded(sample_id)

    def _teacher_fields(self, ids: torch.Tensor, teacher: Any) -> dict[str, torch.Tensor]:
        if teacher is None:
            return {}
        dist = torch.as_tensor(teacher, dtype=torch.float32)
        if dist.ndim != 2 or dist.shape[0] != len(ids) or dist.shape[1] != len(self._subset_index):
            raise ValueError(f"task {self.task.name!r}: teacher log-probs must be (tokens={len(ids)}, "
                             f"vocab_subset={len(self._subset_index)}), got {tuple(dist.shape)}")
        index = torch.tensor([self._subset_index[int(t)] for t in ids.tolist()], dtype=torch.long)
        return {"teacher_logp": dist.gather(1, index.unsqueeze(1)).squeeze(1), "teacher_dist": dist}

    def _append(self, episode: Episode, context: _Context, prompt: Encoded, rollout: Any, teacher: Any, turn: int,
                split: str) -> None:
        ids, logp = rollout.completion_ids, rollout.sampler_logp.float()
        fields = self._teacher_fields(ids, teacher)
        if self.cfg.concat_turns:
            context.add(_policy_tokens(ids))
            context.logp.append(logp)
            for key, value in fields.items():
                context.fields.setdefault(key, []).append(value)
            context.closed = not rollout.truncated and len(ids) > 0 and int(ids[-1]) in self.adapter.stop_token_ids
            return
        encoded = Encoded(prompt.sample_id, torch.cat([prompt.input_ids, ids]),
                          torch.cat([torch.zeros(len(prompt), dtype=torch.bool),
                                     torch.ones(len(ids), dtype=torch.bool)]),
                          prompt.mm)
        episode.sequences.append(TrainingSequence(encoded, logp, fields))

    def _concat_sequence(self, episode: Episode, context: _Context, split: str) -> TrainingSequence:
        turns_with_teacher = {k: len(v) for k, v in context.fields.items()}
        if any(count != len(context.logp) for count in turns_with_teacher.values()):
            raise ValueError(f"task {self.task.name!r} gave teacher log-probs for some turns of an episode only")
        fields = {k: torch.cat(v) for k, v in context.fields.items()}
        return TrainingSequence(context.encoded(self._sample_id(episode, split)), torch.cat(context.logp), fields)

    def _record_frames(self, env: BatchedEnv, observations: list, episodes: list[Episode], count: int,
                       only: list[int] | None = None) -> None:
        if count <= 0:
            return
        wanted = [i for i in (only if only is not None else range(len(episodes))) if i < count]
        if not wanted:
            return
        frames = self.task.frames(env, observations)
        for i in wanted:
            if frames[i] is not None:
                episodes[i].frames.append(np.asarray(frames[i], dtype=np.uint8))


def episode_metrics(episodes: list[Episode], prefix: str, reward_mode: str = "return") -> dict[str, float]:
    """Success rate, return, turns, parse failures (count and rate), token counts and how episodes ended."""
    if not episodes:
        return {}
    turns = [t for e in episodes for t in e.turns]
    failures = sum(e.parse_failures for e in episodes)
    out = {
        f"{prefix}/success_rate": float(np.mean([e.success for e in episodes])),
        f"{prefix}/return": float(np.mean([e.episode_return for e in episodes])),
        f"{prefix}/reward": float(np.mean([e.reward(reward_mode) for e in episodes])),
        f"{prefix}/turns": float(np.mean([len(e.turns) for e in episodes])),
        f"{prefix}/episodes": float(len(episodes)),
        f"{prefix}/truncated_frac": float(np.mean([e.truncated for e in episodes])),
        f"{prefix}/parse_failures": float(failures),
        f"{prefix}/parse_failure_rate": failures / max(len(turns), 1),
        f"{prefix}/start_failures": float(sum(not e.started for e in episodes)),
        f"{prefix}/new_tokens_per_turn": float(np.mean([t.new_tokens for t in turns])) if turns else 0.0,
    }
    lengths = [len(s.encoded) for e in episodes for s in e.sequences]
    if lengths:
        out[f"{prefix}/sequence_tokens"] = float(np.mean(lengths))
    for outcome in sorted({t.outcome for t in turns} - {"ok"}):
        out[f"{prefix}/parse_{outcome}"] = float(sum(t.outcome == outcome for t in turns))
    return out
