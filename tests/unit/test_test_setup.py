"""The test suite leaves the checkout as it found it."""

from hypothesis import settings

from tests.helpers.manifests import ROOT


def test_hypothesis_writes_its_database_outside_the_checkout():
    db_path = getattr(settings().database, "path", None)
    assert db_path is not None and ROOT not in db_path.resolve().parents, db_path
