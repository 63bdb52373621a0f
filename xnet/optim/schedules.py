"""The learning-rate schedules and their factory, under the import path they always had.

The schedules live in lr_schedules.py and get_schedule beside get_optimizer in factory.py; this
module only gathers them, so `from xnet.optim.schedules import get_schedule` keeps working.
"""

from xnet.optim.factory import FINAL_FACTOR, SCHEDULES, get_schedule
from xnet.optim.lr_schedules import (
    ConstantSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    OneCycleSchedule,
    Schedule,
    StepSchedule,
    WarmupSchedule,
    step_at_thirds,
    thirds_milestones,
)

__all__ = [
    "FINAL_FACTOR",
    "SCHEDULES",
    "ConstantSchedule",
    "CosineSchedule",
    "CyclicSchedule",
    "ExponentialSchedule",
    "OneCycleSchedule",
    "Schedule",
    "StepSchedule",
    "WarmupSchedule",
    "get_schedule",
    "step_at_thirds",
    "thirds_milestones",
]
