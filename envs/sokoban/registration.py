"""gymnasium registration of ``mmsft/Sokoban-v0`` (entry point named as a string; nothing heavy is imported)."""

from gymnasium.envs.registration import register, registry

ENV_ID = "mmsft/Sokoban-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.sokoban.env:SokobanEnv")
