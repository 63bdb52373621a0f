"""Optimizers, regularisers, gradient clipping and learning-rate schedules.

Typical use (the trainer does this):

    opt = get_optimizer("adam", model.parameters(), regularizers=[L2(1e-4)], clip_norm=5.0)
    sched = get_schedule("cosine", opt.lr, total_steps, steps_per_epoch)
    for step, (x, y) in enumerate(batches):
        opt.lr = sched.lr_at(step)
        opt.zero_grad(); loss = ...; model.backward(...); opt.step()
        reported = loss + opt.penalty()   # regularisers' terms, a 0-d device array
"""

from xnet.optim.adadelta import Adadelta
from xnet.optim.adagrad import Adagrad
from xnet.optim.adam import Adam, AdamW
from xnet.optim.adamax import Adamax
from xnet.optim.clipping import clip_grad_norm, clip_grad_value, grad_norm
from xnet.optim.factory import DEFAULT_LRS, OPTIMIZERS, get_optimizer, resolve_lr
from xnet.optim.lion import Lion
from xnet.optim.nadam import NAdam
from xnet.optim.optimizer import Optimizer
from xnet.optim.plateau import PlateauSchedule
from xnet.optim.radam import RAdam
from xnet.optim.regularizers import L1, L2, REGULARIZERS, Regularizer, total_penalty
from xnet.optim.rmsprop import RMSprop
from xnet.optim.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CosineSchedule,
    CyclicSchedule,
    ExponentialSchedule,
    OneCycleSchedule,
    Schedule,
    StepSchedule,
    WarmupSchedule,
    get_schedule,
    step_at_thirds,
    thirds_milestones,
)
from xnet.optim.sgd import SGD

__all__ = [
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "ConstantSchedule",
    "CosineSchedule",
    "CyclicSchedule",
    "DEFAULT_LRS",
    "ExponentialSchedule",
    "L1",
    "L2",
    "Lion",
    "NAdam",
    "OPTIMIZERS",
    "OneCycleSchedule",
    "PlateauSchedule",
    "Optimizer",
    "RAdam",
    "REGULARIZERS",
    "RMSprop",
    "Regularizer",
    "SCHEDULES",
    "SGD",
    "Schedule",
    "StepSchedule",
    "WarmupSchedule",
    "clip_grad_norm",
    "clip_grad_value",
    "get_optimizer",
    "get_schedule",
    "grad_norm",
    "resolve_lr",
    "step_at_thirds",
    "thirds_milestones",
    "total_penalty",
]
