"""The training loop (:class:`Trainer`), its producers, checkpointing and logging."""
