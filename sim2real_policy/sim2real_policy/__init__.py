"""sim2real_policy."""
