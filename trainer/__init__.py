"""Data -> checkpoint: load, clean, redact, format, tokenise, train, evaluate."""
