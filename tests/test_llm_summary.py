"""The LLM summarizer against a tiny OpenAI-compatible server on 127.0.0.1, and its fallbacks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tasks.summaries.llm import SummarizerConfig, summarize, summarize_llm
from tasks.summaries.extractive import summarize_extractive

PARAGRAPHS = [
    "A team of researchers says two of four patients showed motor function recovery after a stem cell transplant.",
    "The team transplanted two million cells into four patients who had lost sensation after spinal cord injuries.",
    "The researchers said the four patients did not develop any serious health problems.",
]
TITLE = "Stem cell transplant helps spinal cord patients"
EXTRACTIVE = summarize_extractive(PARAGRAPHS, budget=300, title=TITLE)
GOOD = "Two of four spinal cord injury patients regained motor function after a stem cell transplant, researchers said."


def completion(content: Any) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "tiny",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
    ).encode()


class ChatServer:
    """A chat-completions endpoint whose answer each test sets with ``reply``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: Callable[[BaseHTTPRequestHandler], None] = lambda h: self.send(h, 200, completion(GOOD))
        self.release = threading.Event()  # lets a hanging handler go at teardown
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(self.rfile.read(length))}
                )
                server.reply(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.stopped = False
        self.thread.start()

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.reply = lambda h: self.send(h, status, body, content_type)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.stop()


def config_for(chat: ChatServer, **overrides: Any) -> SummarizerConfig:
    fields = {"summarizer": "llm", "llm_base_url": chat.base_url, "llm_model": "tiny", "llm_timeout": 5.0}
    return SummarizerConfig(**(fields | overrides))


def test_uses_the_models_answer_and_speaks_the_api(chat: ChatServer) -> None:
    config = config_for(chat, llm_api_key="sekrit")
    assert summarize_llm(PARAGRAPHS, 300, config, title=TITLE) == GOOD
    [request] = chat.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sekrit"
    body = request["body"]
    assert body["model"] == "tiny"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "300 characters" in body["messages"][0]["content"]
    assert body["messages"][1]["content"].startswith(TITLE + "\n\n" + PARAGRAPHS[0])


def test_shared_client_is_used_and_left_open(chat: ChatServer) -> None:
    with httpx.Client() as client:
        assert summarize_llm(PARAGRAPHS, 300, config_for(chat), client) == GOOD
        assert summarize_llm(PARAGRAPHS, 300, config_for(chat), client) == GOOD
        assert not client.is_closed
    assert len(chat.requests) == 2
    assert "Authorization" not in chat.requests[0]["headers"]


def test_hanging_server_times_out_to_extractive(chat: ChatServer) -> None:
    chat.reply = lambda h: chat.release.wait(30)
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat, llm_timeout=0.5), title=TITLE) == EXTRACTIVE


def test_dribbling_server_hits_the_overall_deadline(chat: ChatServer) -> None:
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        # Leading spaces are valid JSON, one well within the read timeout, for ~3 s, then a
        # good answer: only an overall deadline stops the wait, so without it this test fails.
        padding = 60
        body = completion(GOOD)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(padding + len(body)))
        handler.end_headers()
        try:
            for _ in range(padding):
                if chat.release.wait(0.05):
                    return
                handler.wfile.write(b" ")
                handler.wfile.flush()
            handler.wfile.write(body)
        except OSError:
            return

    chat.reply = dribble
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat, llm_timeout=0.5), title=TITLE) == EXTRACTIVE


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, b'{"error": {"message": "boom"}}', "application/json"),
        (429, completion(GOOD), "application/json"),
        (200, b"<html>definitely not json</html>", "text/html"),
        (200, b'{"choices": []}', "application/json"),
        (200, b'{"choices": [{"message": {}}]}', "application/json"),
        (200, b"[1, 2, 3]", "application/json"),
        (200, completion(None), "application/json"),
        (200, completion(""), "application/json"),
        (200, completion("   \n "), "application/json"),
        (200, completion("Summary:"), "application/json"),
    ],
)
def test_unusable_answers_fall_back_to_extractive(
    chat: ChatServer, status: int, body: bytes, content_type: str
) -> None:
    chat.answer(status, body, content_type)
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat), title=TITLE) == EXTRACTIVE
    assert len(chat.requests) == 1


def test_refused_connection_falls_back(chat: ChatServer) -> None:
    config = config_for(chat)
    chat.stop()
    assert summarize_llm(PARAGRAPHS, 300, config, title=TITLE) == EXTRACTIVE


def test_long_answer_is_trimmed_to_whole_sentences(chat: ChatServer) -> None:
    first = "Two of four patients regained motor function after a stem cell transplant."
    second = "Researchers at Keio University reported no serious side effects in the study."
    third = "They now plan a clinical trial to seek government approval for the treatment."
    chat.answer(200, completion(f"{first} {second}\n\n{third}"))
    assert summarize_llm(PARAGRAPHS, len(first) + 1 + len(second) + 5, config_for(chat)) == f"{first} {second}"


def test_answer_without_a_fitting_sentence_falls_back(chat: ChatServer) -> None:
    chat.answer(200, completion("word " * 200))
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat), title=TITLE) == EXTRACTIVE


def test_preamble_and_wrapping_quotes_are_dropped(chat: ChatServer) -> None:
    chat.answer(200, completion(f'Summary: "{GOOD}"'))
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat)) == GOOD


def test_unconfigured_llm_uses_extractive_without_calling_anyone(chat: ChatServer) -> None:
    assert summarize_llm(PARAGRAPHS, 300, SummarizerConfig(summarizer="llm"), title=TITLE) == EXTRACTIVE
    assert summarize_llm(PARAGRAPHS, 300, config_for(chat, llm_model=None), title=TITLE) == EXTRACTIVE
    assert chat.requests == []


def test_dispatch_follows_the_summarizer_setting(chat: ChatServer) -> None:
    assert summarize(PARAGRAPHS, 300, config_for(chat, summarizer="extractive"), title=TITLE) == EXTRACTIVE
    assert chat.requests == []
    assert summarize(PARAGRAPHS, 300, config_for(chat), title=TITLE) == GOOD
    assert len(chat.requests) == 1


def test_config_from_settings_reads_llm_fields_and_defaults_the_rest() -> None:
    settings = SimpleNamespace(
        summarizer="LLM", llm_base_url="http://127.0.0.1:9/v1", llm_model="m", llm_api_key="", llm_timeout=3
    )
    config = SummarizerConfig.from_settings(settings)
    assert config == SummarizerConfig("llm", "http://127.0.0.1:9/v1", "m", None, 3.0)
    assert config.llm_ready
    bare = SummarizerConfig.from_settings(SimpleNamespace(summary_chars=300))
    assert bare == SummarizerConfig()
    assert not bare.llm_ready


def test_empty_article_gives_empty_summary_without_a_request(chat: ChatServer) -> None:
    assert summarize_llm([], 300, config_for(chat)) == ""
    assert summarize_llm(["  "], 300, config_for(chat)) == ""
    assert chat.requests == []
