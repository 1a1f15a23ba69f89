"""mmsft plugin (entry point ``mmsft.plugins: data_selection``): the data-selection study command."""

COMMANDS = {
    ("study", "data-selection"): ("tasks.data_selection.cli_study",
                                  "Random vs S3FT / GRAPE / UDS / Q-Tuning / STAT selection at the same SFT budget "
                                  "on a toy task: held-out accuracy, forgetting probe, tokens trained."),
}
