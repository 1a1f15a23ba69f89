"""VGRP-Bench tasks (Ren et al., arXiv 2503.23064): prompts, tolerant answer parsing with counted outcomes,
S-SFT / R-SFT dataset building and the evaluation report. Public API: :mod:`tasks.vgrp.api`."""
