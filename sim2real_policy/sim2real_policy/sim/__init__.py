"""The embedded MuJoCo simulator: a Robotiq 2F-85 on a Cartesian stage over a table.

``scene`` builds the model from :class:`SceneParams`; ``robot.GripperSim`` runs it and speaks
the suite's command and state vocabulary; ``expert`` is the privileged scripted grasp.
"""
# MUJOCO_GL (offscreen rendering) is chosen by the package, sim2real_policy/__init__.py.
