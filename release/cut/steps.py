"""The steps of a cut, in the order they run. A new target joins by adding its Step here."""

from __future__ import annotations

from release.cut.artefact_steps import CHECKSUMS_STEP, PUBLISH, RSYNC, STATS, TARBALLS
from release.cut.context import Step
from release.cut.tree_steps import DERIVE, METADATA, READ, SCAN

STEPS: tuple[Step, ...] = (METADATA, SCAN, DERIVE, READ, TARBALLS, RSYNC, STATS, CHECKSUMS_STEP, PUBLISH)
