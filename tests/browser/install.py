"""Make sure Debian's chromium is installed for the real-browser tests (``tests/browser``).

Why this exists: Playwright cannot download its own browsers on this machine, so the
browser tests drive the distribution's chromium at /usr/bin/chromium. CI runs
``python -m tests.browser.install`` before them: it prints the installed version, or
installs the package with apt-get (as root, else through ``sudo -n``) without reading
standard input, and exits non-zero with what to run by hand when it cannot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
APT_GET = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
UPDATE = [*APT_GET, "update"]
INSTALL = [*APT_GET, "install", "-y", "--no-install-recommends", "chromium"]
BY_HAND = (
    "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y --no-install-recommends chromium"
)


def _run(argv: list[str], timeout_s: float) -> int:
    """Run ``argv`` with no standard input; its output goes to this process's output."""
    try:
        return subprocess.run(
            argv, stdin=subprocess.DEVNULL, timeout=timeout_s, check=False
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1


def chromium_version() -> str | None:
    """The version line of /usr/bin/chromium, or None when it is missing or broken."""
    if not CHROMIUM.exists():
        return None
    try:
        answer = subprocess.run(
            [str(CHROMIUM), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = answer.stdout.strip()
    return version if answer.returncode == 0 and version else None


def root_prefix() -> list[str] | None:
    """How to run a command as root without a prompt: directly, via ``sudo -n``, or not."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is not None and _run([sudo, "-n", "true"], timeout_s=30) == 0:
        return [sudo, "-n"]
    return None


def main() -> int:
    version = chromium_version()
    if version is not None:
        print(version)
        return 0
    prefix = root_prefix()
    if prefix is None:
        problem = "not root and sudo -n is not available"
    elif _run([*prefix, *UPDATE], timeout_s=900) != 0:
        problem = "apt-get update failed"
    elif _run([*prefix, *INSTALL], timeout_s=1800) != 0:
        problem = "apt-get install chromium failed"
    else:
        version = chromium_version()
        if version is not None:
            print(version)
            return 0
        problem = f"{CHROMIUM} --version still fails after installing"
    print(
        f"Could not install Debian's chromium ({problem}); run by hand: {BY_HAND}", file=sys.stderr
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
