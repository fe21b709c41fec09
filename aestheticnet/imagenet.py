"""ImageNet's channel statistics, the input normalisation of every model here: the cells are generic image
features, and an exported model documents the values in its manifest so that an app normalises the same way."""

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
