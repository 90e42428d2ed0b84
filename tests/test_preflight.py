"""The start-up check of `gleaner worker`, `beat` and `web`: a refused login ends the process with
one line that names the server and never the secret; a server that does not answer only warns.

(Across hosts, with a wrong PostgreSQL password too, in tests/test_multihost.py.)"""

from __future__ import annotations

import pytest

from tests.servers import RedisServer, base_env, run_cli
from worker.preflight import EX_CONFIG, PreflightError, check_database, check_redis, preflight
from worker.redis_server import free_port
from worker.settings import Settings

PASSWORD = "pf-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory):
    """A redis-server on 127.0.0.1 that wants a password."""
    server = RedisServer(tmp_path_factory.mktemp("locked-redis"), password=PASSWORD).start()
    yield server
    server.stop()


def url(server: RedisServer, password: str | None) -> str:
    auth = f":{password}@" if password is not None else ""
    return f"redis://{auth}127.0.0.1:{server.port}/0"


def test_redis_refusals_and_silence_are_told_apart(locked_redis):
    assert check_redis(url(locked_redis, PASSWORD)) is None
    wrong = check_redis(url(locked_redis, "wrong-password"))
    assert wrong.refused and wrong.service == "Redis" and wrong.where == f"127.0.0.1:{locked_redis.port}"
    assert "invalid username-password pair" in wrong.reason
    missing = check_redis(url(locked_redis, None))
    assert missing.refused and missing.reason == "a password is required and none was given"
    silent = check_redis(f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    assert not silent.refused and "Connection refused" in silent.reason


def test_a_refusal_raises_one_line_and_silence_only_warns(locked_redis, tmp_path):
    settings = Settings(redis_url=url(locked_redis, "wrong-password"), database_url=f"sqlite:///{tmp_path}/g.db")
    with pytest.raises(PreflightError) as refused:
        preflight(settings)
    line = str(refused.value)
    assert line.startswith(f"Redis at 127.0.0.1:{locked_redis.port} refused the login: ")
    assert line.endswith("; check GLEANER_REDIS_URL") and "\n" not in line and "wrong-password" not in line
    port = free_port()
    warnings = preflight(Settings(redis_url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
                                  database_url=f"sqlite:///{tmp_path}/g.db"))
    assert warnings == [f"Redis at 127.0.0.1:{port} does not answer "
                        f"(Error 111 connecting to 127.0.0.1:{port}. Connection refused.); waiting for it"]


def test_an_unknown_database_is_a_refusal(postgres_server):
    finding = check_database(postgres_server.url("no_such_database"))
    assert finding.refused and finding.service == "PostgreSQL"
    assert finding.reason == 'database "no_such_database" does not exist'
    assert check_database(postgres_server.url()) is None
    assert check_database("sqlite:///nowhere/at/all.db") is None  # a file: nothing to log in to


def test_the_worker_command_exits_with_one_line(locked_redis, tmp_path):
    secret_file = tmp_path / "redis_url"
    secret_file.write_text(url(locked_redis, "not-" + PASSWORD) + "\n")
    env = base_env(GLEANER_REDIS_URL="", GLEANER_REDIS_URL_FILE=str(secret_file),
                   GLEANER_DATABASE_URL=f"sqlite:///{tmp_path}/g.db", GLEANER_DATA_DIR=str(tmp_path))
    for command in (["worker", "-Q", "fetch"], ["beat"], ["web"]):
        result = run_cli(*command, env=env, timeout=60)
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == EX_CONFIG, (command, lines)
        assert lines == [f"gleaner {command[0]}: Redis at 127.0.0.1:{locked_redis.port} refused the login: "
                         "invalid username-password pair or user is disabled.; check GLEANER_REDIS_URL"]
