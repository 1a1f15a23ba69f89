"""gymnasium registration for libero (filled in by its issue)."""
