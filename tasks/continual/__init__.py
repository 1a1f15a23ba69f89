"""The continual post-training study (Lai et al., arXiv 2507.05386) on mmsft's worlds: task data builders
(:mod:`tasks.continual.worlds`), the study's experiment (:mod:`tasks.continual.study`), its computed conclusions
(:mod:`tasks.continual.verdict`) and ``mmsft study continual``. The engine is :mod:`mmsft.continual`."""
