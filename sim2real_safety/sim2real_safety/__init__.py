"""sim2real_safety."""
