"""dashboard.access: which bind addresses DEMO may serve on, from plain values."""

from __future__ import annotations

import pytest

from dashboard.access import demo_bind_problem, is_loopback


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.0.1.1", "localhost", "LOCALHOST", "::1", "[::1]", "unix:///run/c.sock"],
)
def test_loopback_addresses_serve_this_machine_only(address: str) -> None:
    assert is_loopback(address)
    assert demo_bind_problem(address, app_path="/srv/console/dashboard/app.py") is None


@pytest.mark.parametrize(
    "address", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "console.internal", "localhost.evil"]
)
def test_other_addresses_are_refused_with_the_command_to_use(address: str) -> None:
    assert not is_loopback(address)
    problem = demo_bind_problem(address, app_path="/srv/console/dashboard/app.py")
    assert problem is not None
    assert f"listens on `{address}`" in problem
    assert (
        "`python -m streamlit run /srv/console/dashboard/app.py --server.address 127.0.0.1`"
        in problem
    )
    assert "LIVE" in problem


@pytest.mark.parametrize("address", [None, "", "  "])
def test_an_unset_address_is_every_interface(address: str | None) -> None:
    assert not is_loopback(address)
    problem = demo_bind_problem(address, app_path="dashboard/app.py")
    assert problem is not None and "listens on every network interface" in problem
