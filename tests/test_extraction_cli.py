"""``gleaner extract``: saved pages in, one record per page out, in input order."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from worker.cli_extract import extract_command

PROSE = "The ferry company said the new timetable would start in the spring, after the repairs to the pier."


def _page(title: str, paragraphs: int = 4) -> str:
    body = "".join(f"<p>{PROSE} Paragraph {i}.</p>" for i in range(paragraphs))
    return (f"<html lang='en'><head><title>{title}</title>"
            f"<meta property='article:published_time' content='2024-05-01T09:30:00+02:00'>"
            f"<meta name='author' content='Ann Example'></head>"
            f"<body><nav><a href='/'>Home</a></nav><article><h1>{title}</h1>{body}</article></body></html>")


@pytest.fixture()
def pages(tmp_path: Path) -> list[Path]:
    plain = tmp_path / "first.html"
    plain.write_text(_page("First story"), encoding="utf-8")
    packed = tmp_path / "second.html.gz"
    packed.write_bytes(gzip.compress(_page("Second story").encode("utf-8")))
    empty = tmp_path / "third.html"
    empty.write_text("<html><body><nav><a href='/'>Home</a></nav></body></html>", encoding="utf-8")
    return [plain, packed, empty]


def test_jsonl_one_record_per_input_in_order(pages: list[Path]) -> None:
    result = CliRunner().invoke(extract_command, [str(p) for p in pages])
    assert result.exit_code == 1  # the third page has no article
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in pages]
    first, second, third = records
    assert first["title"] == "First story" and second["title"] == "Second story"
    assert first["body"] == [f"{PROSE} Paragraph {i}." for i in range(4)]
    assert first["published_at"] == "2024-05-01T09:30:00+02:00"
    assert first["authors"] == ["Ann Example"]
    assert first["language"] == "en"
    for field in ("url", "canonical_url", "modified_at", "site_name", "image", "tags"):
        assert field in first
    assert "no article text" in third["error"]
    assert "1 of 3 pages gave no article" in result.stderr


def test_json_array_and_url(pages: list[Path]) -> None:
    result = CliRunner().invoke(extract_command, ["--format", "json", "--url", "https://ferry.example/2024/s",
                                                  str(pages[0])])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 1 and records[0]["url"] == "https://ferry.example/2024/s"


def test_text_format(pages: list[Path]) -> None:
    result = CliRunner().invoke(extract_command, ["-f", "text", str(pages[0]), str(pages[1])])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"== {pages[0]}\nFirst story\n")
    assert f"{PROSE} Paragraph 3.\n\n== {pages[1]}\nSecond story\n" in result.stdout


def test_url_needs_a_single_path(pages: list[Path]) -> None:
    result = CliRunner().invoke(extract_command, ["--url", "https://x.example/", str(pages[0]), str(pages[1])])
    assert result.exit_code == 2
    assert "single PATH" in result.output


def test_output_file_with_progress_bar_on_many_files(pages: list[Path], tmp_path: Path) -> None:
    many = [pages[0], pages[1]] * 6
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(extract_command, ["-o", str(out), *map(str, many)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["title"] for r in records] == ["First story", "Second story"] * 6
    assert "extracting" in result.stderr  # the bar's label, on stderr, never in the records


def test_site_rules_file(pages: list[Path], tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"title": "article p:last-of-type", "body": "article", "drop": ["h1"]}), encoding="utf-8")
    result = CliRunner().invoke(extract_command, ["--rules", str(rules), str(pages[0])])
    record = json.loads(result.stdout)
    assert record["title"] == f"{PROSE} Paragraph 3."
    assert record["body"] == [f"{PROSE} Paragraph {i}." for i in range(3)]  # the title line is not body
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"body": "div["}), encoding="utf-8")
    result = CliRunner().invoke(extract_command, ["--rules", str(bad), str(pages[0])])
    assert result.exit_code == 2 and "invalid CSS selector" in result.output


def test_the_cli_loads_the_extractor_only_when_a_command_needs_it():
    """`gleaner --help` and commands that never extract do not import the extractor (its readers,
    language model and date parsers); `from tasks.extraction import extract_article` still works."""
    import subprocess
    import sys

    check = ("import sys, worker.cli\n"
             "assert 'tasks.extraction.extract' not in sys.modules, 'imported with the CLI'\n"
             "from tasks.extraction import extract_article\n"
             "assert extract_article.__module__ == 'tasks.extraction.extract'\n"
             "import tasks.extraction\n"
             "try:\n"
             "    tasks.extraction.no_such_thing\n"
             "except AttributeError:\n"
             "    pass\n"
             "else:\n"
             "    raise AssertionError('a missing name was found')\n")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
