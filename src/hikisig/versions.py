"""Versions of hikisig and the packages its numbers depend on (for cards and provenance)."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["PACKAGES", "__version__", "package_versions"]

#: The version of hikisig (also ``hikisig.__version__``).
__version__ = "0.1.0"

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
