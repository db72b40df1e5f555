"""rsync mirrors: the public file lists and the daemon configuration."""
