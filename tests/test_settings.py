from pathlib import Path

import pytest

from worker.settings import Settings


def test_defaults_put_everything_under_the_data_dir(monkeypatch, tmp_path):
    for var in ("GLEANER_DATA_DIR", "GLEANER_REDIS_URL", "GLEANER_DATABASE_URL", "GLEANER_ALLOW_PRIVATE_URLS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    s = Settings()
    assert s.data_dir == tmp_path / "gleaner"
    assert s.redis_url is None
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'gleaner' / 'gleaner.db'}"
    assert s.allow_private_urls == []
    assert s.web_host == "127.0.0.1" and s.summary_chars == 300


def test_environment_overrides_and_comma_lists(monkeypatch):
    monkeypatch.setenv("GLEANER_DATA_DIR", "/srv/gleaner")
    monkeypatch.setenv("GLEANER_REDIS_URL", "redis://127.0.0.1:7000/1")
    monkeypatch.setenv("GLEANER_DATABASE_URL", "postgresql+psycopg://g@127.0.0.1/g")
    monkeypatch.setenv("GLEANER_ALLOW_PRIVATE_URLS", " 127.0.0.1, intranet.example ,10.0.0.0/8,")
    s = Settings()
    assert s.data_dir == Path("/srv/gleaner")
    assert s.redis_url == "redis://127.0.0.1:7000/1"
    assert s.effective_database_url.startswith("postgresql")
    assert s.allow_private_urls == ["127.0.0.1", "intranet.example", "10.0.0.0/8"]


def _no_secrets_in_env(monkeypatch):
    for name in ("REDIS_URL", "DATABASE_URL", "WEB_TOKEN", "LLM_API_KEY"):
        monkeypatch.delenv(f"GLEANER_{name}", raising=False)
        monkeypatch.delenv(f"GLEANER_{name}_FILE", raising=False)


def test_secrets_come_from_files_named_by_their_FILE_variable(monkeypatch, tmp_path):
    _no_secrets_in_env(monkeypatch)
    values = {"REDIS_URL": "redis://:s3cret@10.0.0.5:6379/0", "DATABASE_URL": "postgresql+psycopg://g:pw@db/g",
              "WEB_TOKEN": "tok-123", "LLM_API_KEY": "key-456"}
    for name, value in values.items():
        (tmp_path / name).write_text(f"  {value}\n")  # surrounding whitespace and the newline are dropped
        monkeypatch.setenv(f"GLEANER_{name}_FILE", str(tmp_path / name))
    s = Settings()
    assert (s.redis_url, s.database_url, s.web_token, s.llm_api_key) == tuple(values.values())
    shown = repr(s) + str(s)
    assert not any(value in shown for value in values.values())


def test_a_secret_file_that_cannot_be_used_is_refused_by_name(monkeypatch, tmp_path):

    from worker.settings import SecretFileError

    _no_secrets_in_env(monkeypatch)
    monkeypatch.setenv("GLEANER_WEB_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(SecretFileError, match=r"GLEANER_WEB_TOKEN_FILE: cannot read .*missing: No such file"):
        Settings()
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("GLEANER_WEB_TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(SecretFileError, match="GLEANER_WEB_TOKEN_FILE: .*empty is empty"):
        Settings()
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("GLEANER_WEB_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("GLEANER_WEB_TOKEN", "from-variable")
    with pytest.raises(SecretFileError, match="set GLEANER_WEB_TOKEN or GLEANER_WEB_TOKEN_FILE, not both"):
        Settings()
    monkeypatch.setenv("GLEANER_WEB_TOKEN", "")  # empty counts as unset: the file is used
    assert Settings().web_token == "from-file"


def test_urls_are_masked_for_messages():
    from worker.settings import masked_url

    assert masked_url("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert masked_url("postgresql+psycopg://gleaner:p%40ss@db:5432/g") == "postgresql+psycopg://gleaner:***@db:5432/g"
    assert masked_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
