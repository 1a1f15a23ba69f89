"""Model loading, tiny offline builders, modality adapters and the action tokenizer."""
