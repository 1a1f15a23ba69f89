"""Sample / Message schema, loaders, media IO and dataset generators (shapes-world QA)."""
