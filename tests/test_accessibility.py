"""WCAG 2.1 AA in a real browser: axe-core (from the npm registry, `npm ci` in .ci/run) run by
Playwright on every page of the demo, as public funders' rules ask (Section 508, EN 301 549).

A page passes when axe finds no violation of impact "serious" or "critical"; each page's
findings of every impact go to test-artifacts/axe/ for a human to read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.test_browser import PAGES, Server, chromium, open_page, ref, server, tab  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
OUT = REPO / "test-artifacts" / "axe"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def axe_violations(page: Page) -> list[dict]:
    """Inject axe-core into the page and run it on the whole document (WCAG 2.1 A and AA rules)."""
    if not AXE.is_file():
        pytest.fail(f"axe-core not found at {AXE}: run `npm ci` in the repository (`bash .ci/run` does it)",
                    pytrace=False)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS)
    return result["violations"]


def _node(node: dict) -> str:
    """Where, and for contrast the colours and ratio axe measured."""
    data = next((c.get("data") for c in node.get("any", []) if isinstance(c.get("data"), dict)), None) or {}
    found = f" {data['fgColor']} on {data['bgColor']} = {data['contrastRatio']}:1" if "contrastRatio" in data else ""
    return (node["target"][-1] if node["target"] else "?") + found


def _summary(violations: list[dict]) -> list[str]:
    return [f"{v['impact']}: {v['id']} ({len(v['nodes'])}x) {v['help']}: "
            + "; ".join(_node(n) for n in v["nodes"][:3]) for v in violations]


SETTLED = ("() => !document.querySelector('[data-stale=\"true\"]')"
           " && document.getAnimations().every(a => a.playState !== 'running')")


def settled_violations(page: Page) -> list[dict]:
    """axe's findings once the page has settled. Streamlit fades elements in, and greys the stale
    ones of a rerun; on a loaded machine axe can catch text half-way (#797b7e on #fdfdfd), which is
    no colour of the theme. So wait for no running animation and no stale element, and when axe
    still finds a blocking violation, look again a moment later: a real one is still there."""
    page.wait_for_function(SETTLED, timeout=15_000)
    violations = axe_violations(page)
    if any(v["impact"] in BLOCKING for v in violations):
        page.wait_for_timeout(2_000)
        page.wait_for_function(SETTLED, timeout=15_000)
        violations = axe_violations(page)
    return violations


@pytest.mark.parametrize("path", list(PAGES))
def test_no_serious_accessibility_violation(tab: Page, server: Server, path: str):
    page = tab
    open_page(page, server, path)
    page.wait_for_timeout(500)  # charts draw a moment after the script turns idle
    violations = settled_violations(page)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{path or 'home'}.json").write_text(json.dumps(_summary(violations), indent=1))
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, "\n".join(_summary(blocking))
