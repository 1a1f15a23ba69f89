"""mmsft plugin (entry point ``mmsft.plugins: vgrp``): the VGRP-Bench environment tasks (``vgrp``, ``vgrp-<puzzle>``)."""

from tasks.vgrp import env_task as _env_task  # noqa: F401  (registers the vgrp tasks)
