"""mmsft plugin (entry point ``mmsft.plugins: video``): VideoRFT / Video-R1 rewards, stage ``video_rl`` (T-GRPO),
the ``videorft_eval`` evaluator, the ``videorft`` / ``video_r1`` algorithm presets and ``mmsft study videorft``."""

from mmsft.algorithms import register_algorithm
from tasks.video import evaluation as _evaluation  # noqa: F401  (registers videorft_eval)
from tasks.video import rewards as _rewards  # noqa: F401  (registers videorft_accuracy, _format, _length)
from tasks.video import semantic as _semantic  # noqa: F401  (registers videorft_semantic)
from tasks.video import tgrpo as _tgrpo  # noqa: F401  (registers stage video_rl)

_VIDEORFT_RL = {"advantage": "grpo", "group_size": 8, "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 1024,
                "rewards": "videorft_accuracy,videorft_format,videorft_semantic,videorft_length"}
_VIDEORFT_OBJECTIVE = {"name": "ppo_clip", "loss_agg_mode": "seq-mean-token-mean",
                       "args": {"clip_low": 0.2, "clip_high": 0.2},
                       "kl": {"coef": 0.04, "estimator": "k3", "placement": "loss"}}

# VideoRFT (arXiv 2505.12434, run_grpo_video.sh): GRPO, G = 8, β = 0.04 (k3), temperature 1, top-p 0.95, 1024 new
# tokens, reward = accuracy + format + semantic + length bonus.
register_algorithm("videorft", stage="video_rl", rl=dict(_VIDEORFT_RL), objective=dict(_VIDEORFT_OBJECTIVE),
                   optim={"lr": 1e-6, "weight_decay": 0.01, "max_grad_norm": 5.0})
# Video-R1 (arXiv 2503.21776): the same GRPO with T-GRPO on, 768 new tokens, accuracy + format (+ length bonus).
register_algorithm("video_r1", stage="video_rl",
                   rl={**_VIDEORFT_RL, "max_new_tokens": 768,
                       "rewards": "videorft_accuracy,videorft_format,videorft_length"},
                   objective=dict(_VIDEORFT_OBJECTIVE), stage_args={"tgrpo": True},
                   optim={"lr": 1e-6, "weight_decay": 0.01, "max_grad_norm": 5.0})

COMMANDS = {
    ("study", "videorft"): ("tasks.video.cli_study",
                            "Video reasoning study: zero-shot vs CoT-SFT vs SFT→GRPO "
                            "(± semantic reward, ± T-GRPO)."),
}
