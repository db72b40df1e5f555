"""The steps of a cut, in the order they run. A new target joins by adding its Step here.

The issue's order, but for three moves: this year's metadata is placed first, so that derive selects by this
year's ratings and the scan checks files against this year's posts; derive runs before the scan, so
that the scan checks the tree as it will be published (derive removes the 512px copies of taken-down
originals, which the scan would otherwise report as 512px images without an original); and the metadata
tarball comes after the rsync lists and the statistics, which do not need it: its compression starts ahead
once the metadata is placed and takes the core those one-thread steps leave idle for longer.
"""

from __future__ import annotations

from release.cut.artefact_steps import CHECKSUMS_STEP, PUBLISH, RSYNC, STATS, TARBALLS
from release.cut.context import Step
from release.cut.tree_steps import DERIVE, METADATA, READ, SCAN

STEPS: tuple[Step, ...] = (METADATA, DERIVE, SCAN, READ, RSYNC, STATS, TARBALLS, CHECKSUMS_STEP, PUBLISH)
