"""Adapter for Qwen2-VL and Qwen2.5-VL (images and video) through the real Hugging Face processor.

It always builds ``mm_token_type_ids`` (0 text, 1 image, 2 video): Qwen2-VL raises without it and Qwen2.5-VL
silently falls back to 1-D positions (wrong M-RoPE). Video frames are decoded and budgeted by
:mod:`mmsft.data.media` and handed to the processor with their metadata (sampled fps), so
``second_per_grid_ts`` is right rather than the processor's 24-fps default.
"""

from __future__ import annotations

from typing import Any

import torch

from mmsft.data.media import image_from_array, load_image, read_video
from mmsft.data.schema import DataError, Sample
from mmsft.models.adapters.base import Encoded, ModalityAdapter, ModelBatch, response_text

VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
_PER_IMAGE = ("pixel_values", "image_grid_thw")
_PER_VIDEO = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


class QwenVLAdapter(ModalityAdapter):
    family = "qwen-vl"

    def __init__(self, processor: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(processor, *args, **kwargs)
        convert = self.tokenizer.convert_tokens_to_ids
        self.image_token_id = convert("<|image_pad|>")
        self.video_token_id = convert("<|video_pad|>")
        self._vision_ids = [convert(t) for t in VISION_TOKENS]
        if None in self._vision_ids or self.tokenizer.unk_token_id in self._vision_ids:
            raise ValueError(f"tokenizer lacks one of the Qwen-VL special tokens {VISION_TOKENS}")

    @property
    def suppressed_token_ids(self) -> list[int]:
        return list(self._vision_ids)

    def _conversation(self, sample: Sample, with_target: bool) -> list[dict]:
        messages = sample.messages if with_target else sample.prompt_messages
        return [{"role": m.role, "content": [p.to_hf() for p in m.parts]} for m in messages]

    def _render(self, conversation: list[dict], add_generation_prompt: bool) -> str:
        return self.processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=add_generation_prompt)

    def _process_prompt(self, sample: Sample, prompt_text: str) -> tuple[list[int], dict[str, torch.Tensor]]:
        where = sample.where()
        images = [image_from_array(p.array, where, self.budget) if p.array is not None
                  else load_image(p.path, where, self.budget) for p in sample.image_parts()]
        kwargs: dict[str, Any] = {"text": [prompt_text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        clips = [read_video(p, where, self.budget) for p in sample.media("video")]
        if clips:
            from transformers.video_utils import VideoMetadata

            kwargs["videos"] = [c.frames for c in clips]
            kwargs["video_metadata"] = [VideoMetadata(total_num_frames=len(c.frames), fps=c.sample_fps,
                                                      frames_indices=list(range(len(c.frames)))) for c in clips]
            kwargs["do_sample_frames"] = False
        try:
            out = self.processor(**kwargs)
        except Exception as exc:
            raise DataError(f"{where}: the processor rejected this sample ({type(exc).__name__}: {exc})") from exc
        ids = out["input_ids"][0].tolist()
        expected = {"image": len(images), "video": len(clips)}
        for kind, token_id in (("image", self.image_token_id), ("video", self.video_token_id)):
            if expected[kind] and token_id not in ids:
                raise DataError(f"{where}: {expected[kind]} {kind}(s) given but the prompt has no {kind} placeholder")
        mm = {k: out[k] for k in (*_PER_IMAGE, *_PER_VIDEO) if k in out and out[k] is not None}
        if clips and "second_per_grid_ts" not in mm and "video_grid_thw" in mm:
            mm["second_per_grid_ts"] = torch.tensor([2.0 / c.sample_fps for c in clips])
        return ids, mm

    def _chat_text(self, sample: Sample) -> str:
        return self._render(self._conversation(sample, True), add_generation_prompt=True)

    def _segment_tokens(self, sample: Sample, text: str) -> tuple[list[int], dict[str, torch.Tensor]]:
        return self._process_prompt(sample, text)

    def encode(self, sample: Sample, with_target: bool = True) -> Encoded:
        prompt_text = self._render(self._conversation(sample, False), add_generation_prompt=True)
        prompt_ids, mm = self._process_prompt(sample, prompt_text)
        if not with_target:
            return self._finish(sample, prompt_ids, [], mm)
        response_ids, supervised = self._response(sample, prompt_text)
        return self._finish(sample, prompt_ids, response_ids, mm, supervised)

    def _response(self, sample: Sample, prompt_text: str) -> tuple[list[int], list[bool] | None]:
        if sample.target is None:
            raise DataError(f"{sample.where()}: expected a final assistant message as the training target")
        if any(p.type != "text" for p in sample.target.parts):
            raise DataError(f"{sample.where()}: the assistant target must be text only")
        full_text = self._render(self._conversation(sample, True), add_generation_prompt=False)
        response = response_text(full_text, prompt_text, self.tokenizer.eos_token or "<|im_end|>", sample.where())
        return self.tokenizer(response, add_special_tokens=False)["input_ids"], None

    def mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return (input_ids == self.image_token_id).long() + 2 * (input_ids == self.video_token_id).long()

    def _collate_mm(self, items: list[Encoded], inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {"mm_token_type_ids": self.mm_token_type_ids(inputs["input_ids"])}
        for key in (*_PER_IMAGE, *_PER_VIDEO):
            parts = [e.mm[key] for e in items if key in e.mm]
            if parts:
                out[key] = torch.cat(parts, dim=0)
        return out

    def _split_mm(self, batch: ModelBatch) -> list[dict[str, torch.Tensor]]:
        ids = batch.inputs["input_ids"]
        merge = self._merge_factor()
        per_sample: list[dict[str, torch.Tensor]] = [{} for _ in batch.sample_ids]
        for pixels_key, grid_key, token_id in (("pixel_values", "image_grid_thw", self.image_token_id),
                                               ("pixel_values_videos", "video_grid_thw", self.video_token_id)):
            if grid_key not in batch.inputs:
                continue
            grids, pixels = batch.inputs[grid_key], batch.inputs[pixels_key]
            grid_pos, pixel_pos = 0, 0
            for row in range(len(batch.sample_ids)):
                placeholder_tokens = int((ids[row] == token_id).sum())
                taken_grids, tokens = [], 0
                while tokens < placeholder_tokens:
                    grid = grids[grid_pos + len(taken_grids)]
                    tokens += int(grid.prod()) // merge
                    taken_grids.append(grid)
                if not taken_grids:
                    continue
                n_pixels = sum(int(g.prod()) for g in taken_grids)
                per_sample[row][grid_key] = grids[grid_pos:grid_pos + len(taken_grids)]
                per_sample[row][pixels_key] = pixels[pixel_pos:pixel_pos + n_pixels]
                if grid_key == "video_grid_thw" and "second_per_grid_ts" in batch.inputs:
                    per_sample[row]["second_per_grid_ts"] = batch.inputs["second_per_grid_ts"][grid_pos:grid_pos + len(taken_grids)]
                grid_pos += len(taken_grids)
                pixel_pos += n_pixels
        return per_sample

    def _merge_factor(self) -> int:
        image_processor = getattr(self.processor, "image_processor", None)
        return int(getattr(image_processor, "merge_size", 2)) ** 2
