"""hikisig: blood metabolic signatures of hikikomori.

Assessment, a cohort store, importers and exporters, statistics, models and
reports for clinics and research groups that study pathological social
withdrawal.
"""

from hikisig.errors import HikisigError, InputError, Problem

__version__ = "0.1.0"

__all__ = ["HikisigError", "InputError", "Problem", "__version__"]
