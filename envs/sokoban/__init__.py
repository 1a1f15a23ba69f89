"""sokoban environments."""
