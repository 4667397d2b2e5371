"""The documentation holds together: a short README, Contents lists that match, and no dead links.

The README is the front door and the package's long description (``readme = "README.md"``), so it must stay
short (under 300 lines) and must not show images by relative path (PyPI cannot resolve them; pictures live
in ``docs/``). Everything else lives in ``docs/``, and the pages point at each other by relative links and
``#anchors``: a section renamed or moved would otherwise leave links that silently go nowhere. Anchors are
checked the way GitHub makes them from headings (lower case, punctuation dropped, spaces to hyphens,
``-1``, ``-2`` for repeats). Pure file reading: no peer exists or is needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 300

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_CONTENTS_ITEM = re.compile(r"^(\s*)[-*] \[(.*)\]\((#[^)\s]*)\)\s*$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their 1-based numbers."""
    lines, fence = [], ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            if not fence:
                fence = marker
            elif marker == fence:
                fence = ""
            continue
        if not fence:
            lines.append((number, line))
    return lines


def _plain(heading: str) -> str:
    """A heading's text as rendered: links reduced to their text, code spans to their content."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before de-duplication)."""
    text = _plain(heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> list[tuple[int, str]]:
    """``(level, text)`` of every ATX heading outside code blocks."""
    found = []
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchors(path: Path) -> set[str]:
    """Every anchor of a page, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    result = set()
    for _, text in headings(path):
        base = slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[tuple[int, bool, str]]:
    """``(line, is_image, target)`` of every inline link or image outside code."""
    found = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = _CODE_SPAN.sub("", line)
        for match in _LINK.finditer(prose):
            found.append((number, match.group(1) == "!", match.group(3)))
    return found


def contents(path: Path) -> list[tuple[int, str, str]]:
    """``(indent, text, anchor)`` of each item of the page's ``## Contents`` list."""
    items, inside = [], False
    for _, line in _prose_lines(path.read_text(encoding="utf-8")):
        if _HEADING.match(line):
            if inside:
                break
            inside = line.strip() == "## Contents"
            continue
        if inside and line.strip():
            match = _CONTENTS_ITEM.match(line)
            assert match, f"{path.name}: the Contents list holds a line that is not one link item: {line!r}"
            items.append((len(match.group(1)), match.group(2), match.group(3)))
    return items


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, (
        f"README.md has {lines} lines; keep it under {README_MAX_LINES} (it is the front door and the "
        "package's long description) and move detail into docs/"
    )


def test_readme_contents_matches_its_sections() -> None:
    sections = [text for level, text in headings(README) if level == 2 and text != "Contents"]
    listed = contents(README)
    assert all(indent == 0 for indent, _, _ in listed), "README's Contents list is flat: one item per section"
    assert [text for _, text, _ in listed] == sections, (
        "README.md's Contents list must name every '##' section, in order, with the heading's own text"
    )
    assert [anchor for _, _, anchor in listed] == [f"#{slug(text)}" for text in sections]


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_doc_contents_matches_its_sections(page: Path) -> None:
    """Top-level items are the page's '##' sections; nested items, where given, its '###' ones."""
    expected: list[tuple[str, list[str]]] = []
    for level, text in headings(page):
        if level == 2 and text != "Contents":
            expected.append((text, []))
        elif level == 3 and expected:
            expected[-1][1].append(text)
    listed: list[tuple[str, list[str]]] = []
    for indent, text, anchor in contents(page):
        assert anchor == f"#{slug(text)}", f"{page.name}: Contents item {text!r} points at {anchor}"
        if indent == 0:
            listed.append((text, []))
        else:
            assert listed, f"{page.name}: the Contents list starts with a nested item"
            listed[-1][1].append(text)
    assert listed, f"{page.name} has no '## Contents' list"
    assert [top for top, _ in listed] == [top for top, _ in expected], (
        f"{page.name}: the Contents list must name every '##' section, in order"
    )
    for (top, nested), (_, subsections) in zip(listed, expected, strict=True):
        assert nested in ([], subsections), (
            f"{page.name}: the Contents items under {top!r} must be its '###' sections, in order"
        )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: _rel(p))
def test_relative_links_resolve(page: Path) -> None:
    problems = []
    for number, _, target in links(page):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        where = f"{_rel(page)}:{number} -> {target}"
        if REPO not in destination.parents and destination != REPO:
            problems.append(f"{where}: points outside the repository")
        elif not destination.is_file():
            problems.append(f"{where}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            problems.append(f"{where}: no heading with that anchor in {_rel(destination)}")
    assert not problems, "dead links:\n" + "\n".join(problems)


def test_readme_shows_no_relative_images() -> None:
    """PyPI renders the long description without the repository: a relative image would be broken."""
    relative = [target for _, image, target in links(README) if image and not _EXTERNAL.match(target)]
    assert not relative, f"README.md shows images by relative path (broken on PyPI): {relative}; use docs/"


def test_readme_links_every_doc() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, _, target in links(README)
        if not _EXTERNAL.match(target) and target.partition("#")[0]
    }
    missing = [_rel(page) for page in DOCS if page.resolve() not in linked]
    assert not missing, f"README.md does not link these docs (add them to 'Where to read more'): {missing}"


def test_slug_follows_github() -> None:
    assert slug("The example DAG `ringcx_recordings_to_s3`") == "the-example-dag-ringcx_recordings_to_s3"
    assert slug('Attacks on "archived and verified", and what') == "attacks-on-archived-and-verified-and-what"
    assert slug("Staying under the vendor's limits") == "staying-under-the-vendors-limits"
    assert slug("The `[ringcx]` Airflow config section") == "the-ringcx-airflow-config-section"
    assert slug("What changed (before → after)") == "what-changed-before--after"
