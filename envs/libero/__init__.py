"""libero environments."""
