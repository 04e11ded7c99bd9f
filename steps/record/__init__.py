"""The record step: labelme annotations at a git tag become a versioned COCO training dataset."""
