"""mmsft plugin (entry point ``mmsft.plugins: puzzles``): puzzle rewards, dataset building, evaluation and study
commands."""

from tasks.puzzles import rewards as _rewards  # noqa: F401  (registers puzzle, puzzle_success, puzzle_format)

COMMANDS = {
    ("data", "build"): ("tasks.puzzles.cli_build", "Build SFT datasets (JSONL + PNG) from the puzzle worlds' solvers."),
    ("eval-puzzles",): ("tasks.puzzles.cli_eval", "Score a policy's outputs on puzzle worlds (parser + verifier)."),
    ("study", "debunk"): ("tasks.puzzles.cli_debunk",
                          "Debunk-SFT study: answer-only vs CoT SFT, with/without prompt diversity, vs RL (Sokoban, "
                          "General Points)."),
}

from tasks.puzzles import evaluators as _evaluators  # noqa: F401,E402  (registers puzzle_success)
from tasks.puzzles import env_tasks as _env_tasks  # noqa: F401,E402  (registers the sokoban and general_points tasks)
