"""Versions of hikisig and the packages its numbers depend on (for cards and provenance)."""

from __future__ import annotations

import platform
from importlib import metadata

from hikisig import __version__

__all__ = ["PACKAGES", "package_versions"]

#: Packages recorded in model cards and run provenance.
PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "skops", "matplotlib")


def package_versions() -> dict[str, str]:
    """hikisig, Python and :data:`PACKAGES` versions ("not installed" where missing).

    Examples
    --------
    >>> "numpy" in package_versions()
    True
    """
    out = {"hikisig": __version__, "python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
