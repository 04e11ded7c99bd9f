"""Datasets: labelme files in, a COCO dataset with a stable split out, and the dataset repo (git + DVC) they live in.

Record is built from these modules; train, evaluate and test read what they wrote. Nothing here
imports the metrics, the reports or a step.
"""
