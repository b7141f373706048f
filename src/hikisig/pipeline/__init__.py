"""The study run (:mod:`hikisig.pipeline.run`): one config in, report, tables, models and
provenance out."""
