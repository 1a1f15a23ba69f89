"""gymnasium registration for general_points (filled in by its issue)."""
