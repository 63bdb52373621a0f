"""The callback protocol of Trainer.fit: hooks at the start and end of training and of each epoch,
and at each reporting interval; CallbackList calls them in order and names a callback that fails."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from xnet.errors import XnetError

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_end")


class Callback:
    """Override the hooks you need; `self.trainer` is the Trainer running `fit` (set before on_train_begin).

    As in Keras, `logs` is a dict: on_epoch_end gets the epoch's record (epoch, train_loss,
    train_accuracy, val_loss, ..., lr, lr_end, seconds). on_batch_end is called once per reporting
    interval (the trainer's `log_every` steps and each epoch's last step), when the running loss is
    read back from the device anyway, so a callback does not add a GPU synchronisation per step; its
    `step` counts the optimizer steps done since the start of training.

    To stop training, call `self.trainer.request_stop()`: fit ends after the current step and writes
    its checkpoint as Ctrl-C does. An exception raised in a hook ends training with one line naming
    the callback (CallbackError); the last checkpoint written stays as it was.
    """

    trainer: Any = None

    def set_trainer(self, trainer: Any) -> None:
        """Called by fit before on_train_begin."""
        self.trainer = trainer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """fit starts; logs: {"epochs": the epoch fit ends at, "initial_epoch": epochs already done}."""

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """fit ends (normally, stopped, or by an error); logs: {"epochs_completed", "interrupted", "stopped_early"}."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Epoch `epoch` (from 1) begins; logs: {"epochs": the last epoch, "steps": steps in this epoch}."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Epoch `epoch` finished (evaluation included); logs: its record, as History holds it."""

    def on_batch_end(self, step: int, logs: dict[str, Any] | None = None) -> None:
        """At a reporting interval; logs: {"loss" (the epoch's running mean), "epoch", "step_in_epoch", "steps",
        "samples_per_s"}."""


class LambdaCallback(Callback):
    """A callback made of functions: LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs))."""

    def __init__(self, **hooks: Callable[..., Any]):
        for name, fn in hooks.items():
            if name not in HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; the hooks are {', '.join(HOOKS)}")
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {describe(fn)}")
            setattr(self, name, fn)
        self.names = {name: getattr(fn, "__qualname__", type(fn).__name__) for name, fn in hooks.items()}


class CallbackError(XnetError):
    """A callback raised: training stopped; the message names the callback, its hook and the error."""

    exit_code = 1


def describe(value: object) -> str:
    """'3 (int)', or the type alone for objects whose repr says little."""
    text = repr(value)
    return f"{text} ({type(value).__name__})" if len(text) <= 40 else type(value).__name__


def callback_name(callback: object) -> str:
    """How a failing callback is named: its class, or for a LambdaCallback its functions."""
    if isinstance(callback, LambdaCallback):
        return "LambdaCallback(" + ", ".join(f"{h}={f}" for h, f in callback.names.items()) + ")"
    return type(callback).__name__


def as_callbacks(callbacks: Any, owner: str = "Trainer.fit") -> list[Any]:
    """The callbacks of `callbacks=`: None, one callback, or a list of them.

    Each is a Callback, an object with some of the hooks (duck typing, as Keras accepts), or a plain
    function, which becomes on_epoch_end(epoch, logs). Anything else is a TypeError naming its place.
    """
    if callbacks is None:
        return []
    one = isinstance(callbacks, Callback) or _hooks_of(callbacks)
    if one or (callable(callbacks) and not isinstance(callbacks, type)):
        callbacks = [callbacks]
    elif isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(
            f"{owner}: callbacks must be a list of Callback objects or functions, got {describe(callbacks)}"
        )
    out = []
    for i, cb in enumerate(callbacks):
        if isinstance(cb, type):
            raise TypeError(f"{owner}: callbacks[{i}] is the class {cb.__name__}; pass an instance: {cb.__name__}()")
        hooks = _hooks_of(cb)
        if hooks:
            bad = [h for h in hooks if not callable(getattr(cb, h))]
            if bad:
                raise TypeError(
                    f"{owner}: callbacks[{i}] ({type(cb).__name__}): {bad[0]} is not callable "
                    f"(got {describe(getattr(cb, bad[0]))})"
                )
            out.append(cb)
        elif callable(cb):
            out.append(LambdaCallback(on_epoch_end=cb))
        else:
            raise TypeError(
                f"{owner}: callbacks[{i}] must be a Callback or a function(epoch, logs), got {describe(cb)}"
            )
    return out


def _hooks_of(obj: object) -> list[str]:
    if isinstance(obj, type):  # a class given instead of an instance: as_callbacks refuses it
        return []
    return [h for h in HOOKS if getattr(obj, h, None) is not None]


class CallbackList:
    """Calls every callback's hook in the order given; an error in a user's callback becomes CallbackError.

    Callbacks marked `internal = True` (xnet's own: progress, checkpoints, history) raise as they are,
    so a full disk or a diverged run reads as it always did.
    """

    def __init__(self, callbacks: Any, trainer: Any = None, owner: str = "Trainer.fit"):
        self.callbacks = as_callbacks(callbacks, owner)
        if trainer is not None:
            for cb in self.callbacks:
                if hasattr(cb, "set_trainer"):
                    cb.set_trainer(trainer)
                else:
                    cb.trainer = trainer
        # the hooks each callback overrides, found once: the interval hook runs often
        self._bound = {h: [(cb, getattr(cb, h)) for cb in self.callbacks if _overrides(cb, h)] for h in HOOKS}

    def call(self, hook: str, *args: Any) -> None:
        """Run `hook` of every callback that has it."""
        for cb, fn in self._bound[hook]:
            if getattr(cb, "internal", False):
                fn(*args)
                continue
            try:
                fn(*args)
            except CallbackError:
                raise
            except Exception as e:
                raise CallbackError(
                    f"callback {callback_name(cb)} failed in {hook}: {type(e).__name__}: {e}; training stopped "
                    "(the last checkpoint written is kept)"
                ) from e

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.call("on_train_begin", logs)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.call("on_epoch_end", epoch, logs)

    def on_batch_end(self, step: int, logs: dict[str, Any]) -> None:
        self.call("on_batch_end", step, logs)


def _overrides(cb: object, hook: str) -> bool:
    """Whether `cb` does something in `hook` (the Callback base class's hooks do nothing)."""
    fn = getattr(cb, hook, None)
    if fn is None:
        return False
    base = getattr(Callback, hook)
    return getattr(fn, "__func__", None) is not base
