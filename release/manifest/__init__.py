"""Manifests: one record per file, streamed as compressed JSON lines."""
