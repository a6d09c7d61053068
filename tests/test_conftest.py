"""The test session's own setup (tests/conftest.py): what the README's test command relies on."""

import pytest


def test_shared_fixture_groups_reach_the_xdist_scheduler(request):
    # `-n 2 --dist loadgroup` makes each shared fixture (a whole sweep, a two-node cluster) once only if every
    # test that uses it carries its group in its node id before the tests are shared out
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not run by a pytest-xdist worker with --dist loadgroup")
    conftest = request.config.pluginmanager.getplugin(str(request.config.rootpath / "tests" / "conftest.py"))
    grouped = {i.nodeid: g for i in request.session.items if (g := conftest.xdist_group_of(i))}
    if not grouped:
        pytest.skip("no collected test uses a shared fixture")
    assert all(nodeid.endswith(f"@{g}") for nodeid, g in grouped.items()), grouped
