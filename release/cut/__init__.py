"""`cut`: the yearly release from one release file, step by step, resumable (see `release.cut.run`)."""
