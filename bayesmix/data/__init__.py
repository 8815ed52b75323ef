"""Data: run tables (what the laws are fitted on), corpora and the run ledger."""
