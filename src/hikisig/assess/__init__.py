"""Questionnaires as data, the generic scorer, the 2020 criteria, FHIR and REDCap exchange."""

from hikisig.assess.answers import check_answers, read_answers_csv
from hikisig.assess.criteria import CRITERIA_COLUMNS, apply_criteria, classify
from hikisig.assess.definition import Instrument, InstrumentError, instrument_ids, load_instrument
from hikisig.assess.scoring import reverse, score

__all__ = [
    "CRITERIA_COLUMNS",
    "Instrument",
    "InstrumentError",
    "apply_criteria",
    "check_answers",
    "classify",
    "instrument_ids",
    "load_instrument",
    "read_answers_csv",
    "reverse",
    "score",
]
