"""A journal worth looking at, the same for every viewer test: hostile ids and content, every
kind of event, and one damaged session."""

from __future__ import annotations

from pathlib import Path

from journal import Journal

CHAT = "team/chat 1"  # a slash and a space: one path segment once percent-encoded
XSS = "<script>x</script>"
DAMAGED = "damaged"
ODD_IDS = ("..", ".", "%41", "<i>id</i>", "café ☕", "a/../b")
SCRIPT = "<script>window.__pwned = 1; console.log('PWNED script')</script>"
IMG = "<img src=x onerror=\"window.__pwned = 2; console.log('PWNED img')\">"


def populate(j: Journal) -> None:
    """Seqs of ``CHAT``: 1 created, 2-4 messages, 5 settings, 6 edit, 7 removal, 8 clear,
    9-10 messages, 11 redaction (of message 9)."""
    j.create(CHAT, actor="web")
    first = j.add_message(CHAT, "user", "Where is order #1001?", actor="alice")
    j.add_message(CHAT, "assistant", "Checking order #1001.", actor="bot")
    j.add_message(CHAT, "user", "thx", actor="alice")
    j.update_settings(CHAT, {"model": "small-llm"}, actor="admin")
    j.edit_message(CHAT, first.id, "Where is my order #1001?", actor="alice")
    j.pop_message(CHAT, actor="alice")
    j.clear(CHAT, actor="web")
    secret = j.add_message(CHAT, "user", "my card is 4111", actor="alice")
    j.add_message(CHAT, "assistant", "Found it, it ships today.", actor="bot")
    j.redact_message(CHAT, secret.id, reason="erasure request #77", actor="dpo")
    j.create(XSS, actor="<b>actor</b>")
    j.add_message(XSS, "user", SCRIPT, actor="<b>actor</b>")
    j.add_message(XSS, "<img src=x onerror=alert(1)>", IMG)
    for sid in ODD_IDS:
        j.create(sid)
        j.add_message(sid, "user", f"I am {sid}")
    j.create(DAMAGED)
    j.add_message(DAMAGED, "user", "original words")
    j.add_message(DAMAGED, "assistant", "more")


def damage(j: Journal) -> Path:
    """Changes one letter of ``DAMAGED``'s second line, as a careless hand would; its path."""
    log = Path(j.storage.location(DAMAGED))
    data = log.read_bytes()
    log.write_bytes(data.replace(b"original words", b"originaL words", 1))
    return log


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root``, by relative path: compared before and after to prove nothing
    was written."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
