"""The test step: inference on the held-out test split with a drawn, browsable report.

(Named `test` after the pipeline step; pytest only collects `tests/`.)
"""
