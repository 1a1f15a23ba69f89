"""gymnasium registration of ``mmsft/GeneralPoints-v0`` (entry point named as a string)."""

from gymnasium.envs.registration import register, registry

ENV_ID = "mmsft/GeneralPoints-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.general_points.env:GeneralPointsEnv")
