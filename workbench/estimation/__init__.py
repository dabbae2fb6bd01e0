"""The parts of the pre-flight estimate (workbench.estimate): model shapes, step costs, machine calibration.

Light by design: the UI process imports it, so nothing here imports torch, transformers, peft or trl.
"""

from workbench.estimation.architecture import Architecture, read_architecture, trainable_parameters
from workbench.estimation.calibration import Calibration, calibrate

__all__ = ["Architecture", "Calibration", "calibrate", "read_architecture", "trainable_parameters"]
