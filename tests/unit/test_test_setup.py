"""The test suite leaves the checkout as it found it."""

from hypothesis import settings

from tests.helpers.manifests import ROOT


def test_hypothesis_writes_its_database_outside_the_checkout():
    """Outside the checkout, or nowhere (hypothesis keeps no database when it detects CI)."""
    db_path = getattr(settings().database, "path", None)
    assert db_path is None or ROOT not in db_path.resolve().parents, db_path
