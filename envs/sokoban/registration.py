"""gymnasium registration for sokoban (filled in by its issue)."""
