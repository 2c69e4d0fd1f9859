"""Measurement and reporting on top of the core: evaluation, FLOPs, timing, results, ELUE score,
tables, plots, the submission writer and validator, demo data, provenance."""
