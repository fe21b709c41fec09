"""int8 quantisation: one recipe (:class:`~aestheticnet.export.int8.recipe.Int8Recipe`) and its format-neutral
steps (outlier images, range equalisation, bias correction); each format applies it in its own package."""

from aestheticnet.export.int8.recipe import DEFAULT_RECIPE, Int8Recipe

__all__ = ["DEFAULT_RECIPE", "Int8Recipe"]
