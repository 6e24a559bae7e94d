"""sim2real_bringup."""
