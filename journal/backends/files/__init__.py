"""The files backend: one append-only JSONL log per session under a root folder."""
