"""gymnasium registration of ``mmsft/Libero-v0``.

Only names a string entry point: importing this module never imports mujoco, robosuite or libero, so ``import envs``
works without the ``[libero]`` extra. The simulator is imported when the environment is made.
"""

from __future__ import annotations

import gymnasium

ENV_ID = "mmsft/Libero-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="envs.libero.env:LiberoEnv",
        # The step limit depends on the suite (220 ... 520), so LiberoEnv truncates itself; no TimeLimit wrapper.
        max_episode_steps=None,
        disable_env_checker=True,
    )
