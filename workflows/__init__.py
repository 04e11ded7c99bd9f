"""Orchestration: the Hera workflow definitions and the tools around them (render, lint, run, submit).

Runs on a user's machine or in CI, never inside the step images.
"""
