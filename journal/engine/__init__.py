"""The backend-neutral engine: the storage seam, group commit, the session cache, loading.

It reaches storage only through ``journal.engine.storage.Storage`` and never imports a
backend (an ``import-linter`` contract holds it to that).
"""
