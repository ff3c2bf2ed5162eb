"""No form of a PostgreSQL password ever shows: not in ``Journal.root``, ``repr``, errors,
logs or the command line's output.

libpq takes a password from ``user:password@`` and from ``password=`` / ``sslpassword=`` in
the query string (keys and values percent-decoded, keys repeatable), and reads ``passfile``
and ``service`` files itself. Oracle: the secret, in any letter case, raw or decoded, appears
in nothing a user sees, through real connection failures (nothing listening on the port; a
server refusing the role), and the masked URL still shows where the journal is.
"""

from __future__ import annotations

import logging
import socket
import traceback
from pathlib import Path

import pytest

from journal import Journal, StorageError
from journal.backends.postgres.url import shown_url
from journal.cli.main import main

pytest.importorskip("psycopg", reason="psycopg is installed by the dev and postgres extras")

SECRET = "Hunter2Secret"  # noqa: S105 (made up, to check that no message shows it)
# The same secret as a URL may carry it: percent-encoded in part or whole.
ENCODED = "Hunter2%53ecret"
BROKEN = "pa%zzHunter2Secret"  # libpq quotes a bad percent-encoding in its error


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Every form, as a URL template: {host} is 127.0.0.1:<port>, {tail} the rest of the query.
FORMS = {
    "user:pass@": "postgresql://app:{s}@{host}/chat",
    "user:pass@ encoded": "postgresql://app:{e}@{host}/chat",
    "user:pass@ badly encoded": "postgresql://app:{b}@{host}/chat",
    "user:pass@ with @ and ? in it": "postgresql://app:x@y?{s}@{host}/chat",
    "password=": "postgresql://app@{host}/chat?password={s}",
    "password= encoded": "postgresql://app@{host}/chat?password={e}",
    "password= badly encoded": "postgresql://app@{host}/chat?password={b}",
    "password= key encoded": "postgresql://app@{host}/chat?pass%77ord={s}",
    "PASSWORD=": "postgresql://app@{host}/chat?PASSWORD={s}",
    "password= repeated": "postgresql://app@{host}/chat?password=first{s}&sslmode=disable&password={s}",
    "sslpassword=": "postgresql://app@{host}/chat?sslmode=disable&sslpassword={s}",
    "sslpassword= encoded": "postgresql://app@{host}/chat?sslpassword={e}&application_name=t",
    "no path": "postgresql://app@{host}?password={s}",
    "both": "postgresql://app:{s}@{host}/chat?password={s}&sslpassword={e}",
}


def url_of(form: str, host: str) -> str:
    return FORMS[form].format(s=SECRET, e=ENCODED, b=BROKEN, host=host)


def assert_hidden(*texts: str) -> None:
    seen = "\n".join(texts).lower()
    for secret in (SECRET, ENCODED, "zzhunter2"):
        assert secret.lower() not in seen, f"{secret!r} shows in:\n{seen}"


def everything_shown(journal: Journal, error: BaseException) -> list[str]:
    """What a user could see: repr, root, the error and its whole traceback."""
    return [
        repr(journal),
        journal.root,
        str(error),
        repr(error),
        repr(error.args),
        *traceback.format_exception(type(error), error, error.__traceback__),
    ]


@pytest.mark.parametrize("form", list(FORMS))
def test_the_shown_url_masks_every_password_form(form: str) -> None:
    url = url_of(form, "127.0.0.1:5432")
    shown = shown_url(url)
    assert_hidden(shown)
    assert "***" in shown
    assert "127.0.0.1:5432" in shown  # it still says where the journal is


def test_the_shown_url_keeps_what_is_no_secret() -> None:
    plain = "postgresql://app@db.example:5432/chat?sslmode=require&options=-csearch_path%3Dj"
    assert shown_url(plain) == plain
    assert shown_url("postgresql://app:pw@h/d?password=x&passfile=/p&Password=y") == (
        "postgresql://app:***@h/d?password=***&passfile=/p&Password=***"
    )


@pytest.mark.parametrize("form", list(FORMS))
def test_a_refused_connection_names_the_url_without_any_password(
    form: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()  # nothing listens there: connection refused
    journal = Journal(url_of(form, f"127.0.0.1:{port}"))
    try:
        with pytest.raises(StorageError) as info:
            journal.create("s")
        assert f"127.0.0.1:{port}" in str(info.value)
        assert_hidden(*everything_shown(journal, info.value), caplog.text)
    finally:
        journal.close()


@pytest.mark.parametrize("form", ["user:pass@", "password=", "password= repeated", "sslpassword="])
def test_a_server_refusing_the_login_shows_no_password(form: str) -> None:
    from tests.pg import need_server

    need_server()
    url = url_of(form, "127.0.0.1:5432").replace("app", "no_such_role_jt")
    journal = Journal(url)
    try:
        with pytest.raises(StorageError) as info:
            journal.create("s")
        assert "no_such_role_jt" in str(info.value)  # the server's own answer came through
        assert_hidden(*everything_shown(journal, info.value))
    finally:
        journal.close()


@pytest.mark.parametrize("form", list(FORMS))
def test_the_command_line_error_shows_no_password(form: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(["--root", url_of(form, f"127.0.0.1:{port}"), "ls"]) == 1
    out, err = capsys.readouterr()
    assert f"127.0.0.1:{port}" in err
    assert_hidden(out, err)


def test_password_and_service_files_are_never_read_into_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{SECRET}\n")
    passfile.chmod(0o600)
    services = tmp_path / "pg_service.conf"
    services.write_text(
        f"[good]\nhost=127.0.0.1\nport={port}\npassword={SECRET}\n[bad]\nhost=127.0.0.1\n{SECRET}\n"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    urls = [
        f"postgresql://app@127.0.0.1:{port}/chat?passfile={passfile}",
        "postgresql:///chat?service=good",
        "postgresql:///chat?service=bad",  # a syntax error on the line holding the secret
    ]
    for url in urls:
        journal = Journal(url)
        try:
            with pytest.raises(StorageError) as info:
                journal.create("s")
            assert_hidden(*everything_shown(journal, info.value))
        finally:
            journal.close()
        assert main(["--root", url, "ls"]) == 1
        assert_hidden(*capsys.readouterr())
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    journal = Journal(f"postgresql://app@127.0.0.1:{port}/chat")
    try:
        with pytest.raises(StorageError) as info:
            journal.create("s")
        assert_hidden(*everything_shown(journal, info.value))
    finally:
        journal.close()
