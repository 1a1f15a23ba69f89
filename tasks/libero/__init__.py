"""LIBERO task layer: evaluation protocol, demonstration collection and their CLI commands.

- :mod:`tasks.libero.evaluate`  ``evaluate(policy, EvalConfig)``: the standard success-rate protocol.
- :mod:`tasks.libero.collect`   ``collect(policy, CollectConfig)``: record episodes for training.
- :mod:`tasks.libero.episodes`  the on-disk episode format (writer and reader).
- :mod:`tasks.libero.policies`  the policy protocol and ``--policy`` loading (``oracle``, ``module:callable``).
- :mod:`tasks.libero.rollout`   the loop driving a vector env with one policy per slot.
- :mod:`tasks.libero.cli_eval`, :mod:`tasks.libero.cli_collect`  ``mmsft eval-libero``, ``mmsft data collect-libero``.
"""
