"""Where sessions are stored: each backend implements ``journal.engine.storage.Storage``."""
