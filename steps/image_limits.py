"""The largest image any step decodes, in a module of its own: the ground-truth checks of
`trainyard coco-eval` need the number, not PIL (whose import costs the command ~20 ms)."""

# PIL's own bound (Image.MAX_IMAGE_PIXELS, ~89 million pixels): a header can declare billions,
# and decoding them would exhaust the memory of every worker. Ground truth that declares a larger
# image is refused too.
MAX_PIXELS = 89_478_485
