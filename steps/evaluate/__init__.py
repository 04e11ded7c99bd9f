"""The evaluate step: score every checkpoint, select the best, promote it if it beats production."""
