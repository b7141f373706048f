"""The cohort store: schema, importers, the analysis dataset and exporters."""

from hikisig.cohort.assessments import import_responses, load_assessments, rescore_assessments
from hikisig.cohort.dataset import Dataset, load_dataset
from hikisig.cohort.exporters import EXPORT_FORMATS, export_dataset
from hikisig.cohort.importer import ImportResult, import_measurements, import_participants
from hikisig.cohort.info import store_info
from hikisig.cohort.readers import FORMATS, ParsedTable, ReadOptions, read_measurements
from hikisig.cohort.store import Store, StoreError

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "Dataset",
    "ImportResult",
    "ParsedTable",
    "ReadOptions",
    "Store",
    "StoreError",
    "export_dataset",
    "import_measurements",
    "import_participants",
    "import_responses",
    "load_assessments",
    "load_dataset",
    "read_measurements",
    "rescore_assessments",
    "store_info",
]
