"""mmsft plugin (entry point ``mmsft.plugins: vgrp``): the VGRP-Bench environment tasks (``vgrp``, ``vgrp-<puzzle>``)
and ``mmsft study vgrp``."""

from tasks.vgrp import env_task as _env_task  # noqa: F401  (registers the vgrp tasks)

COMMANDS = {
    ("study", "vgrp"): ("tasks.vgrp.cli_study",
                        "VGRP study: S-SFT vs R-SFT vs RL vs SFT->RL, trained vs untrained puzzles, text vs image."),
}
