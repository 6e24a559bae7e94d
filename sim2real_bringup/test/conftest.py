"""Offscreen rendering for the simulator tests, chosen before any test imports mujoco."""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')
