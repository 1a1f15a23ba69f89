"""Pure simulators and generators with the gymnasium API (numpy, PIL, gymnasium, mujoco/robosuite).

Importing ``envs`` registers every environment id (``mmsft/Sokoban-v0``, ``mmsft/GeneralPoints-v0``,
``mmsft/VGRP-<puzzle>-v0``, ``mmsft/Libero-v0``) with gymnasium. Registration modules only name entry points;
nothing heavy (mujoco) is imported until an environment is made. This package never imports torch models,
transformers or mmsft.
"""

from envs.sokoban import registration as _sokoban_registration  # noqa: F401
from envs.general_points import registration as _general_points_registration  # noqa: F401
from envs.vgrp import registration as _vgrp_registration  # noqa: F401
from envs.libero import registration as _libero_registration  # noqa: F401
