"""The learning-rate schedules and their factory, under the import path they always had.

The schedules live in lr_schedules.py and get_schedule beside get_optimizer in factory.py; this
module only gathers them, so `from xnet.optim.schedules import get_schedule` keeps working.
"""

from xnet.optim import lr_schedules
from xnet.optim.factory import FINAL_FACTOR, SCHEDULES, get_schedule
from xnet.optim.lr_schedules import *  # noqa: F403 (every schedule class, as this module had them)

__all__ = [*lr_schedules.__all__, "FINAL_FACTOR", "SCHEDULES", "get_schedule"]
