"""`python -m steps.select`: the fan-in of the fan-out evaluation."""
