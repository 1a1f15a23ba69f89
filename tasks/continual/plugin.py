"""mmsft plugin (entry point ``mmsft.plugins: continual``): ``mmsft study continual``."""

COMMANDS = {
    ("study", "continual"): ("tasks.continual.cli_study",
                             "Continual post-training study: sequential SFT vs RFT vs RIF-RFT vs multi-task, "
                             "forgetting matrices (arXiv 2507.05386)."),
}
