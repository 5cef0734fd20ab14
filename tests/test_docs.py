"""The README and docs are self-contained: every relative link resolves to a file inside the repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold commands, not links
    return [m.group(1) for m in LINK.finditer(text)]


def test_pages_found_and_they_have_links():
    assert len(PAGES) > 5
    assert sum(len(links(p)) for p in PAGES) > 20  # the regular expression does find the links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(page):
    bad = []
    for target in links(page):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # https:, mailto:, an anchor on the same page
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(target)
    assert not bad, f"{page.relative_to(ROOT)}: links that do not resolve inside the repository: {bad}"


def test_no_page_points_at_the_specification_outside_the_repository():
    for page in PAGES:
        assert "../shared" not in page.read_text(), page.name
        assert "SPEC" not in page.read_text(), page.name
