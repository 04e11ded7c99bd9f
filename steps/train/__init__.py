"""The train step: Mask R-CNN on a recorded training dataset; checkpoints, metrics, TensorBoard."""
