"""LIBERO robot manipulation as a headless gymnasium environment.

Modules (nothing here imports mujoco until an environment is built):

- :mod:`envs.libero.suites`    suite names, paper step limits, camera names, task metadata look-up.
- :mod:`envs.libero.headless`  ``MUJOCO_GL`` defaults and log/teardown-noise filters; imported before mujoco.
- :mod:`envs.libero.render`    fast/paper render settings and image post-processing (upright, resize).
- :mod:`envs.libero.env`       :class:`~envs.libero.env.LiberoEnv`, registered as ``mmsft/Libero-v0``.
- :mod:`envs.libero.oracle`    :class:`~envs.libero.oracle.ScriptedOracle`, a pick-and-place expert on privileged poses.
- :mod:`envs.libero.vector`    :class:`~envs.libero.vector.LiberoVectorEnv`, spawn workers, episode scheduling, faults.
- :mod:`envs.libero.worker`    the worker process loop (lazy simulator construction, one reply per command).
"""
