"""``gleaner extract``: run the article extractor over saved pages, no queue or worker needed."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import IO, Any

import click
from pydantic import ValidationError

from worker.errors import ExtractionError

_GZIP_MAGIC = b"\x1f\x8b"
_PROGRESS_MIN_FILES = 10  # fewer pages than this finish before a bar would be worth reading


def _read_page(path: Path) -> bytes:
    """A saved page's bytes; gzip files (by their magic bytes, whatever the name) are unpacked."""
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        data = gzip.decompress(data)
    return data


def _record(path: Path, url: str | None, rules: Any) -> dict[str, Any]:
    from tasks.extraction import extract_article

    try:
        article = extract_article(_read_page(path), url, rules=rules)
    except ExtractionError as exc:
        return {"path": str(path), "error": str(exc)}
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return {"path": str(path), "error": f"cannot read: {exc}"}
    record = {"path": str(path), **article.model_dump(mode="json")}
    if not record["url"]:
        record["url"] = record["canonical_url"]
    return record


def _write_text(record: dict[str, Any], out: IO[str], first: bool) -> None:
    if not first:
        out.write("\n")
    out.write(f"== {record['path']}\n")
    if "error" in record:
        out.write(f"error: {record['error']}\n")
        return
    out.write(f"{record['title']}\n")
    details = [
        ("url", record["url"]),
        ("published", record["published_at"]),
        ("modified", record["modified_at"]),
        ("authors", ", ".join(record["authors"])),
        ("language", record["language"]),
        ("site", record["site_name"]),
    ]
    for label, value in details:
        if value:
            out.write(f"{label}: {value}\n")
    out.write("\n")
    out.write("\n\n".join(record["body"]))
    out.write("\n")


def _load_rules(path: Path | None) -> Any:
    if path is None:
        return None
    from tasks.extraction import SiteRules

    try:
        return SiteRules.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--rules") from None


@click.command("extract")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format", "-f", "fmt", type=click.Choice(["json", "jsonl", "text"]), default="jsonl", show_default=True,
    help="json: one array of records; jsonl: one record per line; text: title, details and paragraphs.",
)
@click.option("--url", help="The address the page was fetched from (resolves relative links, dates in paths). "
                            "Only with a single PATH.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON file of site rules (CSS selectors title, body, date and a list drop) to apply.")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-",
              help="Write here instead of standard output.")
def extract_command(paths: tuple[Path, ...], fmt: str, url: str | None, rules_path: Path | None, output: IO[str]) -> None:
    """Extract the article from saved HTML pages (plain or gzip), all in this process.

    Prints one record per PATH, in the order given, with the input's ``path`` and the extracted
    fields: title, body (a list of paragraphs), published_at, modified_at, authors, language,
    url (--url, else the page's canonical URL), canonical_url, site_name, image, tags. A page
    without an article gives a record with ``path`` and ``error`` instead, and the command
    exits with status 1 once every page has been read.

    \b
    Examples:
      gleaner extract page.html
      gleaner extract --format text --url https://example.com/2024/05/01/story story.html.gz
      gleaner extract -o articles.jsonl saved/*.html.gz
    """
    if url is not None and len(paths) > 1:
        raise click.UsageError("--url names the address of one page: give a single PATH with it")
    rules = _load_rules(rules_path)
    failed = 0
    # A bar only when the records go somewhere else than the terminal the bar would draw on.
    quiet = output.isatty() if hasattr(output, "isatty") else False
    show_bar = len(paths) >= _PROGRESS_MIN_FILES and not quiet
    with click.progressbar(paths, label="extracting", file=sys.stderr, hidden=not show_bar) as bar:
        if fmt == "json":
            output.write("[")
        for index, path in enumerate(bar):
            record = _record(path, url, rules)
            failed += "error" in record
            if fmt == "jsonl":
                output.write(json.dumps(record, ensure_ascii=False) + "\n")
            elif fmt == "json":
                output.write(("\n" if index == 0 else ",\n") + json.dumps(record, ensure_ascii=False, indent=2))
            else:
                _write_text(record, output, index == 0)
        if fmt == "json":
            output.write("\n]\n")
    output.flush()
    if failed:
        click.echo(f"{failed} of {len(paths)} pages gave no article", err=True)
        sys.exit(1)
