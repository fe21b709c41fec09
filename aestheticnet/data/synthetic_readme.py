"""README.txt of a synthetic build: what the labels are, the files, and where the source photos come from.

The built-in photos are listed with the licences scikit-image states for them; the user's own photos are named
as the user's, with no licence claimed for them.
"""

from __future__ import annotations

import textwrap

from aestheticnet.data import raters
from aestheticnet.data.distortions import PHOTOS

__all__ = ["readme"]


def readme(config, n_images: int, n_distorted: int, generator_version: int, config_file: str) -> str:
    """README.txt of a build with ``config`` (a ``SynthConfig``)."""
    sources = ""
    if config.photos:
        sources += (
            "\nBuilt-in source photos (shipped inside the scikit-image wheel; licences as stated by "
            "scikit-image):\n" + "".join(f"  {p:<22}{PHOTOS[p][2]}\n" for p in config.photos)
        )
    if config.user_photos:
        sources += (
            "\nThe user's own photos (given with --photos): they belong to the user, under whatever "
            "rights\nthe user holds; no licence is stated or implied for them here. File digests: "
            + config_file
            + ".\n"
            + "".join(f"  {p.name}\n" for p in config.user_photos)
        )
    return f"""\
SYNTHETIC DATASET - THE LABELS ARE SYNTHETIC, NOT HUMAN OPINIONS.

Made by aestheticnet.data.synthetic (generator v{generator_version}) so the pipeline can run
without downloading AVA or TID2013. No person rated these images: every vote was simulated
from a full-reference quality score. Do not report results on it as aesthetic or quality
benchmarks. Exact knobs: {config_file}.

{n_images} images = {n_images - n_distorted} reference crops ({config.size[0]}x{config.size[1]}) of
{len(config.photo_names)} photos x {config.n_crops_per_photo} crop(s) + {n_distorted} distorted versions:
{", ".join(config.distortions)} (saturation on colour photos only) x {config.levels} levels,
each distortion monotone in its level (higher level = stronger = lower quality).

How the labels were made
{textwrap.indent(textwrap.dedent(raters.__doc__.split(chr(10), 2)[2]).strip(), "  ")}

Files
  AVA.txt              AVA layout: index, image id, votes for scores 1..10, tag, tag, challenge
                       (= source photo: its 1-based place in the photo lists below, for splits by photo)
  images/<id>.jpg      every image, JPEG quality {config.storage_jpeg_quality} 4:4:4; labels were
                       computed from these decoded pixels
  reference_images/    TID2013 layout: pristine crops Ixx.{config.tid_ext}
  distorted_images/    ixx_tt_l.{config.tid_ext} (reference, type, level) = decoded pixels of images/<id>.jpg
  mos_with_names.txt   "MOS filename", MOS = mean vote - 1 (0..9), distorted images only
  mos_std.txt          standard error of that mean (std / sqrt(votes)), as in TID2013
  groups.csv           per image: photo (split on this: crops of one photo overlap), ref, type,
                       level, FR score, latent quality, votes, mean, std, both file names
  COMPLETE             written last; a build without it is incomplete
{sources}"""
