"""BitTorrent: client profiles, shard planning, lint (and, next, building and seeding)."""
