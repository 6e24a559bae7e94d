"""sim2real_policy: camera, inference, chunking and control, the MuJoCo sim, sim-side tools."""
import os

# Offscreen rendering without a display or GPU: Mesa's EGL (Debian: libegl1, libegl-mesa0,
# libgl1-mesa-dri, installed by tools/setup.sh). It must be chosen before mujoco is imported,
# and several modules of this package import mujoco (sim, sysid), so the package sets it;
# set MUJOCO_GL=osmesa (libosmesa6) to use the other software path.
os.environ.setdefault('MUJOCO_GL', 'egl')
