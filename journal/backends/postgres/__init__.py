"""The PostgreSQL backend: the same event lines, one row each (extra ``postgres``)."""
