"""general_points environments."""
