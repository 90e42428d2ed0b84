from pathlib import Path

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
