"""deploy/ says what tests/test_multihost.py runs: the same queues on the worker hosts, passwords on
Redis and PostgreSQL, secrets only from files, servers published on chosen addresses only."""

from __future__ import annotations

import re

import pytest

from tests.multihost import PG_SERVER_TIMEOUTS, PG_TIMEOUTS, WORKERS
from tests.servers import REPO
from worker.preflight import EX_CONFIG
from worker.settings import secret_settings

yaml = pytest.importorskip("yaml")
DEPLOY = REPO / "deploy"
SECRET_VARIABLES = [f"GLEANER_{name.upper()}" for name in secret_settings()]
GLEANER_UNITS = ["gleaner-worker@.service", "gleaner-beat.service", "gleaner-web.service", "gleaner-flower.service"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def gleaner_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if "build" in s}


def test_compose_runs_the_tested_queues_on_the_worker_hosts(compose):
    workers = {name: s for name, s in compose["services"].items() if s.get("command", [None, None])[1] == "worker"}
    assert all(s["profiles"] == ["workers"] for s in workers.values())
    queues = {s["command"][s["command"].index("--queues") + 1] for s in workers.values()}
    assert queues == {q for _, q, _, _ in WORKERS}


def test_compose_keeps_secrets_in_files_and_servers_on_chosen_addresses(compose):
    text = (DEPLOY / "docker-compose.yml").read_text()
    for variable in SECRET_VARIABLES:  # never the value itself, only its file
        assert not re.search(rf"^\s*{variable}:", text, re.M), variable
    for name, service in gleaner_services(compose).items():
        env = service["environment"]
        assert env["GLEANER_REDIS_URL_FILE"].startswith("/run/secrets/"), name
        assert env["GLEANER_DATABASE_URL_FILE"].startswith("/run/secrets/"), name
    web = compose["services"]["web"]
    assert web["environment"]["GLEANER_WEB_TOKEN_FILE"] == "/run/secrets/web_token" and "web_token" in web["secrets"]
    redis = compose["services"]["redis"]
    assert all(line in " ".join(redis["entrypoint"]) for line in ("requirepass", "appendonly yes", "rdbcompression no"))
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"
    # The server-side timeouts the multi-host test runs with (there scaled down).
    assert {f"{k}=" for k in PG_SERVER_TIMEOUTS} <= {arg.split("=")[0] + "=" for arg in postgres["command"]}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            # "address:port:port", never "port:port" (which publishes on every interface).
            parts = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", port).split(":")
            assert len(parts) == 3 and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", parts[0]), (name, port)
            assert parts[0] != "0.0.0.0", (name, port)


def test_systemd_units_take_secrets_as_credentials_and_do_not_retry_a_refused_login():
    for unit in GLEANER_UNITS:
        text = (DEPLOY / "systemd" / unit).read_text()
        assert "LoadCredential=redis_url:" in text and "GLEANER_REDIS_URL_FILE=%d/redis_url" in text, unit
        if unit != "gleaner-flower.service":
            assert f"RestartPreventExitStatus={EX_CONFIG}" in text, unit
    web = (DEPLOY / "systemd" / "gleaner-web.service").read_text()
    assert "GLEANER_WEB_TOKEN_FILE=%d/web_token" in web
    env = (DEPLOY / "systemd" / "env.example").read_text()
    client_timeouts = {pair.split("=")[0] for pair in PG_TIMEOUTS.split("&")}
    assert all(f"{name}=" in env for name in client_timeouts)  # the database URL it describes
    assert not any(re.search(rf"^{variable}=", env, re.M) for variable in SECRET_VARIABLES)
    worker = (DEPLOY / "systemd" / "gleaner-worker@.service").read_text()
    enable = re.search(r"systemctl enable --now (.*)", worker).group(1).split()
    assert {u.removeprefix("gleaner-worker@") for u in enable} == {q for _, q, _, _ in WORKERS}
