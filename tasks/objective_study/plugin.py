"""mmsft plugin (entry point ``mmsft.plugins: objective_study``): data commands of the objective zoo and the
objective comparison study."""

from tasks.objective_study import rewards as _rewards  # noqa: F401  (registers study_exact)

COMMANDS = {
    ("study", "sft-objectives"): ("tasks.objective_study.cli_study",
                                  "Compare SFT, DFT, ASFT, OTR, CurioSFT, IFT, masked FT, CHORD, Prefix-RFT and GRPO on one toy "
                                  "task: ID/OOD accuracy, forgetting, calibration, diversity, cost."),
    ("data", "token-weights"): ("tasks.objective_study.cli_data",
                                "Write per-token loss weights into a JSONL: FAIT (diff vs meta.negative) or TL-Training "
                                "key tokens (meta.tool_name, meta.tools)."),
    ("data", "poft-scores"): ("tasks.objective_study.cli_poft",
                              "Write PoFT reference scores (meta.ref_score) computed with one or more aligned models."),
    ("rl", "pick-temperature"): ("tasks.objective_study.cli_temperature",
                                 "Pick the RL sampling temperature whose rollout entropy H_τ is nearest 0.3 "
                                 "(AceReason-Nemotron 1.1)."),
}
