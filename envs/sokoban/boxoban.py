"""Reader for Boxoban level files (google-deepmind/boxoban-levels) that a user has placed on disk.

Format: blocks introduced by ``; <n>`` lines, each block the ASCII rows of a 10x10 room (``#`` wall, ``@`` player,
``$`` box, ``.`` goal, space floor). Nothing is downloaded; pass a file path, a folder of ``*.txt`` files, or the
text itself. Levels load as :class:`envs.sokoban.level.Level` and can be played with
``env.reset(options={"level": level})`` on an env of the same ``dim``.
"""

from __future__ import annotations

from pathlib import Path

from envs.sokoban.level import Level


def parse_boxoban(text: str, source: str = "<text>") -> list[Level]:
    """Parse the text of a Boxoban file into levels (in file order)."""
    levels: list[Level] = []
    block: list[str] = []
    header = None

    def flush() -> None:
        if not block:
            return
        try:
            levels.append(Level.from_ascii(block))
        except ValueError as exc:
            raise ValueError(f"{source}: level {header!r} is malformed: {exc}") from exc
        block.clear()

    for line in text.splitlines():
        if line.startswith(";"):
            flush()
            header = line[1:].strip()
        elif line.strip():
            block.append(line.rstrip("\n"))
        else:
            flush()
    flush()
    return levels


def load_boxoban(path: str | Path) -> list[Level]:
    """Levels from a Boxoban ``.txt`` file or from every ``*.txt`` in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"no *.txt Boxoban files in folder {str(path)!r}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"Boxoban path {str(path)!r} does not exist")
    return [level for f in files for level in parse_boxoban(f.read_text(), str(f))]
