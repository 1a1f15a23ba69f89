"""Per-family puzzle modules of VGRP-Bench (Ren et al., arXiv 2503.23064)."""
