"""LIBERO task layer: evaluation protocol, demonstration collection, VLA training data, the VLA policy, the env-RL
bridge and their CLI commands.

- :mod:`tasks.libero.evaluate`  ``evaluate(policy, EvalConfig)``: the standard success-rate protocol.
- :mod:`tasks.libero.collect`   ``collect(policy, CollectConfig)``: record episodes for training.
- :mod:`tasks.libero.episodes`  the on-disk episode format (writer and reader).
- :mod:`tasks.libero.dataset`   loader ``libero_episodes``: an episode folder as VLA training samples (chunk targets,
  action statistics fitted on the demonstrations).
- :mod:`tasks.libero.prompt`    ``VLAInterface``: the one prompt definition of training, rollouts and evaluation.
- :mod:`tasks.libero.policies`  the policy protocol and ``--policy`` loading (``oracle``, ``mmsft:DIR``,
  ``module:callable``); :mod:`tasks.libero.vla_policy` the batched policy of a trained VLA folder.
- :mod:`tasks.libero.rollout`   the loop driving a vector env with one policy per slot (or one batched policy).
- :mod:`tasks.libero.env_task`  environment task ``libero`` (env RL); :mod:`tasks.libero.teacher` oracle and VLA
  teachers for on-policy distillation; :mod:`tasks.libero.algorithms` the ``vla_*`` presets.
- :mod:`tasks.libero.study`     ``mmsft study vla-opd``.
- :mod:`tasks.libero.cli_eval`, :mod:`tasks.libero.cli_collect`, :mod:`tasks.libero.cli_study`  the commands.
"""
