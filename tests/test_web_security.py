"""The web app's defences: escaping, token auth (bearer and login cookie), loopback-only without a
token, Host and Origin checks, no open redirect after login."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings

import httpx
import pytest
import redis
from click.testing import CliRunner

from tests.servers import REPO, base_env
from tests.webutil import store_record
from worker.redis_server import free_port
from worker.settings import Settings
from worker.storage import Storage
from worker.web import auth
from worker.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice that its test client will move to httpx2
    from fastapi.testclient import TestClient

TOKEN = "correct-horse-battery-staple-0123456789"
SCRIPT = "<script>window.__xss=1</script>"


@pytest.fixture
def storage(tmp_path):
    s = Storage(f"sqlite:///{tmp_path / 'sec.db'}")
    yield s
    s.close()


@pytest.fixture
def broker(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _app(storage, broker, **kwargs):
    kwargs.setdefault("allowed_hosts", ["testserver"])
    kwargs.setdefault("token", None)
    return create_app(storage, redis_client=broker, workers=lambda: [], **kwargs)


# --- escaping -----------------------------------------------------------------------------------


def test_markup_in_a_record_is_shown_as_text_everywhere(storage, broker):
    record_id = store_record(storage, title=f"{SCRIPT} Headline", category=f"cat{SCRIPT}",
                             body=[f"Before {SCRIPT} after.", '<img src=x onerror="window.__xss=2">'],
                             summary=f"Sum {SCRIPT}")
    c = TestClient(_app(storage, broker))
    for path in (f"/records/{record_id}", "/records"):
        page = c.get(path).text
        assert "<script>window" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt; Headline" in page
    reader = c.get(f"/records/{record_id}").text
    assert "Before &lt;script&gt;window.__xss=1&lt;/script&gt; after." in reader
    assert "&lt;img src=x onerror=&#34;window.__xss=2&#34;&gt;" in reader
    # The JSON API returns the text unchanged: escaping is the renderer's job.
    assert c.get(f"/api/records/{record_id}").json()["title"] == f"{SCRIPT} Headline"


def test_markup_in_urls_reasons_and_sources_is_escaped(storage, broker):
    [job_id] = storage.create_jobs([f"https://x.example/{SCRIPT}"], "t")
    storage.fail_job(job_id, reason=f"HTTP 500 {SCRIPT}", stage="fetch")
    app = _app(storage, broker, sources=lambda: [{"name": SCRIPT, "last_error": SCRIPT}])
    c = TestClient(app)
    for path in ("/failures", "/sources", f"/jobs?ids={job_id}"):
        page = c.get(path).text
        assert "<script>window" not in page, path
        assert "&lt;script&gt;" in page, path
    queued = c.post("/queue", data={"urls": f"not a url {SCRIPT}"})
    assert "<script>window" not in queued.text and "&lt;script&gt;" in queued.text


def test_a_javascript_url_never_becomes_a_link(storage, broker):
    record_id = store_record(storage, title="Odd", body=["x"], url="javascript:window.__xss=3")
    page = TestClient(_app(storage, broker)).get(f"/records/{record_id}").text
    assert "javascript:window.__xss=3" in page  # shown as text
    assert 'href="javascript' not in page


# --- token auth ---------------------------------------------------------------------------------


def test_with_a_token_programs_need_the_bearer_header(storage, broker):
    c = TestClient(_app(storage, broker, token=TOKEN))
    for path in ("/api/records", "/api/stats", "/metrics", "/openapi.json"):
        denied = c.get(path)
        assert denied.status_code == 401, path
        assert denied.headers["www-authenticate"] == "Bearer"
        assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, path
    assert c.post("/api/urls", json={"urls": ["not a url"]}).status_code == 401
    assert storage.count_jobs() == {}  # the refused request queued nothing
    assert c.get("/healthz").status_code == 200
    assert c.get("/static/gleaner.css").status_code == 200


def test_with_a_token_browsers_log_in_with_a_form_and_get_a_cookie(storage, broker):
    c = TestClient(_app(storage, broker, token=TOKEN))
    first = c.get("/failures?x=1", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Ffailures%3Fx%3D1"
    form = c.get(first.headers["location"]).text
    assert 'name="next" value="/failures?x=1"' in form

    wrong = c.post("/login", data={"token": "nope", "next": "/failures"}, follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong token." in wrong.text and "gleaner_session" not in c.cookies

    ok = c.post("/login", data={"token": TOKEN, "next": "/failures"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/failures"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie  # the cookie is derived from the token, never the token
    assert c.get("/failures").status_code == 200
    assert c.get("/api/stats").status_code == 200  # the page's script polls with the cookie

    c.post("/logout")
    assert c.get("/failures", follow_redirects=False).status_code == 303


def test_a_cookie_for_another_token_is_refused(storage, broker):
    c = TestClient(_app(storage, broker, token=TOKEN))
    c.cookies.set(auth.SESSION_COOKIE, auth.session_value("some-older-token"))
    assert c.get("/api/stats").status_code == 401


def test_login_never_redirects_off_site(storage, broker):
    c = TestClient(_app(storage, broker, token=TOKEN))
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil"):
        response = c.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
        assert response.headers["location"] == "/", target


# --- loopback, Host and Origin ------------------------------------------------------------------


@pytest.mark.parametrize(("host", "token", "ok"), [
    ("127.0.0.1", None, True), ("127.0.0.5", None, True), ("::1", None, True), ("localhost", None, True),
    ("0.0.0.0", None, False), ("192.168.1.10", None, False), ("::", None, False), ("gleaner.example", None, False),
    ("0.0.0.0", TOKEN, True), ("", None, False),
])
def test_binding_beyond_loopback_needs_a_token(host, token, ok):
    if ok:
        auth.check_bind(host, token)
    else:
        with pytest.raises(auth.UnsafeBindError, match="GLEANER_WEB_TOKEN"):
            auth.check_bind(host, token)


def test_the_server_refuses_to_start_beyond_loopback_without_a_token():
    port = free_port()
    env = base_env(GLEANER_WEB_HOST="0.0.0.0", GLEANER_WEB_PORT=str(port))
    env.pop("GLEANER_WEB_TOKEN", None)
    result = subprocess.run([sys.executable, "-m", "worker.web"], env=env, cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to serve on 0.0.0.0" in result.stderr

    from worker.cli_web import web_command

    os.environ.pop("GLEANER_WEB_TOKEN", None)
    cli = CliRunner().invoke(web_command, ["--host", "0.0.0.0", "--port", str(port)])
    assert cli.exit_code == 1 and "refusing to serve on 0.0.0.0" in cli.output


def test_the_server_with_a_token_answers_only_with_it(tmp_path):
    port = free_port()
    env = base_env(GLEANER_WEB_PORT=str(port), GLEANER_WEB_TOKEN=TOKEN,
                   GLEANER_DATABASE_URL=f"sqlite:///{tmp_path / 'served.db'}")
    proc = subprocess.Popen([sys.executable, "-m", "worker.web"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("server did not start:\n" + (proc.stdout.read() if proc.stdout else ""))
                time.sleep(0.1)
        assert httpx.get(base + "/api/records").status_code == 401
        response = httpx.get(base + "/api/records", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and response.json()["total"] == 0
    finally:
        proc.terminate()
        proc.wait(10)


def test_only_loopback_host_names_are_served_without_a_token(storage, broker):
    app = create_app(storage, settings=Settings(web_host="127.0.0.1"), redis_client=broker, workers=lambda: [],
                     token=None)
    c = TestClient(app, base_url="http://127.0.0.1:8000")
    assert c.get("/api/stats").status_code == 200
    assert c.get("/api/stats", headers={"Host": "localhost:8000"}).status_code == 200
    # A DNS-rebinding page reaches 127.0.0.1 under its own name: refused.
    assert c.get("/api/records", headers={"Host": "attacker.example"}).status_code == 400


def test_cross_site_posts_are_refused(storage, broker):
    c = TestClient(_app(storage, broker))
    evil = c.post("/queue", data={"urls": "https://news.example/a"}, headers={"Origin": "https://evil.example"},
                  follow_redirects=False)
    assert evil.status_code == 403
    evil_api = c.post("/api/urls", json={"urls": ["https://news.example/a"]}, headers={"Origin": "null"})
    assert evil_api.status_code == 403
    referer = c.post("/failures/retry-all", headers={"Referer": "https://evil.example/page"})
    assert referer.status_code == 403
    assert storage.count_jobs() == {}
    same = c.post("/queue", data={"urls": "not a url"}, headers={"Origin": "http://testserver"},
                  follow_redirects=False)
    assert same.status_code == 303


def test_pages_forbid_inline_scripts_and_framing(storage, broker):
    c = TestClient(_app(storage, broker))
    for path in ("/", "/records", "/api/stats", "/login"):
        headers = c.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
    assert c.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN
