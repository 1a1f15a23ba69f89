"""mmsft plugin (entry point ``mmsft.plugins: image_classification``): the CLS-RL rewards and ``mmsft study cls-rl``."""

from tasks.image_classification import rewards as _rewards  # noqa: F401  (registers cls_accuracy, cls_format, ...)

COMMANDS = {
    ("study", "cls-rl"): ("tasks.image_classification.cli_study",
                          "Few-shot classification study: zero-shot vs SFT vs CLS-RL vs No-Thinking-CLS-RL."),
}
