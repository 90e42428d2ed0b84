import redis

from worker.redis_server import EmbeddedRedis, resolve_redis_url
from worker.settings import Settings


def test_embedded_redis_starts_on_loopback_with_aof_and_is_reused(tmp_path):
    embedded = EmbeddedRedis(tmp_path)
    url, started = embedded.ensure()
    try:
        assert started and url.startswith("redis://127.0.0.1:")
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        # The AOF's rewrites leave the already-deflated pages uncompressed (server_config says why).
        assert client.config_get("rdbcompression") == {"rdbcompression": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("dir")["dir"] == str(tmp_path / "redis")
        client.set("k", "v")
        again, started_again = EmbeddedRedis(tmp_path).ensure()
        assert (again, started_again) == (url, False)
    finally:
        assert embedded.stop()
    assert embedded.running_url() is None
    assert (tmp_path / "redis").exists()


def test_restart_keeps_data_through_the_append_only_file(tmp_path):
    embedded = EmbeddedRedis(tmp_path)
    url, _ = embedded.ensure()
    redis.Redis.from_url(url).rpush("fetch", "message")
    embedded.stop()
    url, started = embedded.ensure()
    try:
        assert started
        assert redis.Redis.from_url(url).lrange("fetch", 0, -1) == [b"message"]
    finally:
        embedded.stop()


def test_configured_url_wins_and_no_start_without_server(tmp_path):
    assert resolve_redis_url(Settings(redis_url="redis://127.0.0.1:1/0", data_dir=tmp_path)) == "redis://127.0.0.1:1/0"
    try:
        resolve_redis_url(Settings(redis_url=None, data_dir=tmp_path), start=False)
    except RuntimeError as exc:
        assert "no embedded server runs" in str(exc)
    else:
        raise AssertionError("expected RuntimeError")
