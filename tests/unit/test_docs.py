"""The README and docs/ are enough on their own: no link leaves the repository, every link resolves, and the
calendar table's statuses and the configuration's variables are all written down."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.settings import OVERRIDABLE
from devstack.template import ROOT, load_template

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "docs" / "openapi.yaml"]
# Markdown links and backticked paths that name a file: [text](target), `../x/y.md`
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")
PATH = re.compile(r"`(\.\./[^`\s]+|[\w./-]+\.(?:md|yaml|py))`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_leaves_the_repository_and_each_resolves(doc: Path) -> None:
    text = doc.read_text()
    assert "../shared" not in text
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"
    for path in PATH.findall(text):
        assert not path.startswith("../") or (doc.parent / path).resolve().is_relative_to(ROOT), path


def test_every_zoom_status_the_service_writes_is_documented() -> None:
    from link_zoom.domain import calendar_events, series

    statuses = {
        calendar_events.SCHEDULED,
        calendar_events.AUTHORIZATION_REQUIRED,
        calendar_events.FEATURE_DISABLED,
        calendar_events.DELETED_AT_ZOOM,
        calendar_events.FAILED,
        series.RATE_LIMITED,
    }
    page = (ROOT / "docs" / "calendar-table.md").read_text()
    assert len(statuses) == 6
    for status in statuses:
        assert f"| `{status}` |" in page, status
    for attribute in ("recurrence", "exdates", "series_id", "recurrence_id", "zoom_meeting_id", "zoom_join_url"):
        assert f"`{attribute}`" in page, attribute


def test_every_configuration_variable_is_documented() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    variables = (load_template()["Globals"]["Function"]["Environment"]["Variables"]).keys()
    for name in {*variables, *OVERRIDABLE}:
        assert f"`{name}`" in page, name
