"""The embedded MuJoCo simulator: a Robotiq 2F-85 on a Cartesian stage over a table.

``scene`` builds the model from :class:`SceneParams`; ``robot.GripperSim`` runs it and speaks
the suite's command and state vocabulary; ``expert`` is the privileged scripted grasp.
"""
import os

# Offscreen rendering without a display or GPU: Mesa's EGL (Debian: libegl1, libegl-mesa0,
# libgl1-mesa-dri, installed by tools/setup.sh). Must be chosen before mujoco is imported;
# set MUJOCO_GL=osmesa (libosmesa6) to use the other software path.
os.environ.setdefault('MUJOCO_GL', 'egl')
