"""RedOne 2.0's staged post-training pipeline (arXiv 2511.07070) as a pipeline recipe: ``redone.yaml``."""
