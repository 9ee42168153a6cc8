"""Re-implementations of power clients nobody here wrote, from their public sources."""
