"""Puzzle tasks (Sokoban, General Points; VGRP via ``tasks.vgrp``): prompts, tolerant parsers, verifiers, prompt
diversity, SFT dataset builders and evaluation, following "Debunk the Myth of SFT Generalization" (arXiv 2510.00237)
and "SFT Memorizes, RL Generalizes" (arXiv 2501.17161)."""
