"""A real browser for the UI tests: Debian's Chromium, headless, driven by Playwright (browser
downloads by test tools fail on these machines)."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"needs {CHROMIUM} (./run test installs it as root)")
