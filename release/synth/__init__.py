"""The built-in synthetic dataset."""

from release.synth.dataset import Changelog, SynthReport, synth

__all__ = ["Changelog", "SynthReport", "synth"]
