"""The synthetic reference study with known truth (see docs/synthetic.md)."""

from hikisig.synth.config import PRESETS, SynthConfig, preset
from hikisig.synth.generate import SyntheticStudy
from hikisig.synth.writers import write_files, write_store

__all__ = ["PRESETS", "SynthConfig", "SyntheticStudy", "preset", "write_files", "write_store"]
