"""mmsft plugin (entry point ``mmsft.plugins: libero``): LIBERO evaluation and demonstration collection commands.

Nothing heavy is imported here: MuJoCo and robosuite load only inside the commands that need them.
"""

COMMANDS = {
    ("data", "collect-libero"): ("tasks.libero.cli_collect", "Record LIBERO episodes with the scripted oracle."),
    ("eval-libero",): ("tasks.libero.cli_eval", "Run the standard LIBERO success-rate protocol on a policy."),
    ("study", "vla-opd"): ("tasks.libero.cli_study",
                           "Tiny VLA on LIBERO: SFT from demos, then GRPO vs on-policy distillation vs DAgger."),
}

from tasks.libero import evaluators as _evaluators  # noqa: F401,E402  (registers libero_success; MuJoCo loads lazily)
from tasks.libero import env_task as _env_task  # noqa: F401,E402  (registers the libero task; MuJoCo loads lazily)
from tasks.libero import dataset as _dataset  # noqa: F401,E402  (registers the libero_episodes dataset loader)
from tasks.libero import algorithms as _algorithms  # noqa: F401,E402  (registers vla_grpo, vla_opd, ... presets)
