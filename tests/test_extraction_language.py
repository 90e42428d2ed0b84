"""Every record's language: the page's declaration, checked against its text, on pages written for the
test and on hand-checked non-English pages of the shared corpora."""

from __future__ import annotations

import pytest

from bench.corpora import available, load
from tasks.extraction import extract_article
from tasks.extraction.language import choose_language, declared_code

GERMAN = [
    "Die Fähre nach Helgoland fährt seit dem Frühjahr wieder zweimal täglich, teilte die Reederei am Montag mit.",
    "Viele Inselbewohner hatten lange auf die Rückkehr des Schiffes gewartet, das im Winter in der Werft lag.",
    "Der Bürgermeister sprach von einem wichtigen Tag für den Tourismus und für die Versorgung der Insel.",
]
ENGLISH = [
    "The ferry to the island runs twice a day again since the spring, the shipping company said on Monday.",
    "Many islanders had long waited for the return of the ship, which spent the winter in the shipyard.",
    "The mayor spoke of an important day for tourism and for the supply of everything the island needs.",
]
# Written for this test: a short news story in Japanese (no spaces between words, three scripts).
JAPANESE = [
    "港町の古いフェリーが、半年ぶりに運航を再開しました。",
    "冬の間、船は造船所で点検を受けていましたが、今月から毎日二往復するということです。",
    "島に住む人たちは、買い物や通院が便利になると喜んでいます。町長は「観光にとっても大切な日です」と話しました。",
    "運航会社によりますと、夏休みの期間は臨時便も出す予定だということです。",
]


def page(paragraphs: list[str], lang: str | None, head: str = "") -> str:
    attribute = f' lang="{lang}"' if lang else ""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html{attribute}><head><meta charset='utf-8'><title>{paragraphs[0][:20]}</title>{head}"
            f"</head><body><article><h1>{paragraphs[0][:20]}</h1>{body}</article></body></html>")


def test_a_japanese_page_that_declares_nothing_reads_as_japanese() -> None:
    assert extract_article(page(JAPANESE, None)).language == "ja"


def test_a_japanese_page_under_an_english_template_is_japanese() -> None:
    assert extract_article(page(JAPANESE, "en-US").encode("utf-8")).language == "ja"


def test_the_declaration_stands_when_the_text_agrees() -> None:
    assert extract_article(page(GERMAN, "de-AT")).language == "de"


def test_a_wrong_declaration_yields_to_the_text() -> None:
    assert extract_article(page(GERMAN, "en")).language == "de"
    assert extract_article(page(ENGLISH, "fr")).language == "en"


def test_a_declaration_in_meta_or_json_ld_when_html_has_none() -> None:
    head = '<meta http-equiv="content-language" content="de-DE">'
    assert extract_article(page(GERMAN, None, head)).language == "de"


def test_a_few_words_cannot_overrule_the_declaration() -> None:
    # "Forum Moderator" reads as Latin to a character model; the page says English.
    assert choose_language(["en"], "Forum Moderator", []) == "en"
    assert len(choose_language([None, None], "Forum Moderator", [])) == 2  # undeclared: the best guess, a code


def test_languages_too_close_to_tell_apart_keep_the_declaration() -> None:
    norwegian = ["Fergen til øya går igjen to ganger om dagen, opplyser rederiet mandag.",
                 "Mange av innbyggerne har ventet lenge på at skipet skulle komme tilbake fra verftet."]
    assert choose_language(["nb-NO"], "", norwegian) == "nb"


@pytest.mark.parametrize(("tag", "code"), [("en-GB", "en"), ("pt_BR", "pt"), ("DE", "de"), ("iw", "he"),
                                           ("x-default", None), ("", None), (None, None), ("english", None)])
def test_declared_codes(tag: str | None, code: str | None) -> None:
    assert declared_code(tag) == code


# Non-English pages of the shared corpora, their language checked by hand (title and first
# paragraphs read); several declare none or declare their template's English.
CORPUS_PAGES = [
    ("htmldate", "bibliothek2null.de.mai.html.gz", "de"),  # declares none
    ("htmldate", "helge.at.mahu.html.gz", "de"),  # declares en
    ("htmldate", "linkedin.com.hoeltmann.html.gz", "de"),  # declares en
    ("htmldate", "elpais.com.ciencia.html.gz", "es"),
    ("htmldate", "Infobae.com-Israel.html.gz", "es"),
    ("htmldate", "yomiuri.co.jp-gaza.html.gz", "ja"),
    ("htmldate", "nhk.or.jp.k100.html.gz", "ja"),
    ("htmldate", "madame.lefigaro.fr.dintestin.html.gz", "fr"),  # declares en
    ("htmldate", "tdg.ch.chlorothalonil.html.gz", "fr"),  # declares none
    ("htmldate", "xinhuanet.com.c_1125597921.htm.gz", "zh"),  # declares none
    ("htmldate", "football.ua.podolski.html.gz", "ru"),  # declares none
    ("htmldate", "ukbdnews.com.23646.html.gz", "bn"),  # declares en
    ("htmldate", "n.news.naver.com-607.html.gz", "ko"),
    ("htmldate", "yle.fi.3-11212601.html.gz", "fi"),
    ("htmldate", "VnExpress.net-Kinh-doanh.html.gz", "vi"),
    ("scrapinghub", "11ea381ad92b5448cf66eae62f52ac565361a244c8881615fc6a7bb523cc0c32", "pt"),  # declares none
]


@pytest.fixture(scope="module")
def corpus_pages() -> dict[tuple[str, str], object]:
    wanted = {name for name, _, _ in CORPUS_PAGES}
    if not wanted <= set(available()):
        pytest.skip("the shared corpus is not at ../shared/corpus")
    return {(name, p.id): p for name in wanted for p in load(name)}


@pytest.mark.parametrize(("set_name", "page_id", "code"), CORPUS_PAGES)
def test_non_english_corpus_pages(corpus_pages, set_name: str, page_id: str, code: str) -> None:
    corpus_page = corpus_pages[(set_name, page_id)]
    assert extract_article(corpus_page.html, corpus_page.url).language == code
