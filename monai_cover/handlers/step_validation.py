"""Segmentation validation every N epochs or every N training steps, and at the end of training: MONAI's
``ValidationHandler`` that also tells the evaluator at which training step it runs."""

from __future__ import annotations

from ignite.engine import Engine, Events
from monai.handlers import ValidationHandler

__all__ = ["StepValidation"]


class StepValidation(ValidationHandler):
    """:class:`monai.handlers.ValidationHandler` run every ``interval`` epochs, or with ``steps`` set every ``steps``
    training iterations (a step budget over a large dataset: one epoch can be hours; over 3 labeled volumes one
    epoch is one step). Before each run the evaluator's ``state.trainer_iteration`` is set to the trainer's
    iteration, so per-round records (:class:`~monai_cover.handlers.DiceCurvePlot`) are placed in steps even when
    an epoch holds several rounds.

    Training also ends with a validation when its last step was not one: the best-model handler saves only after a
    validation, so a run shorter than ``interval`` (``--epochs 1`` with ``--val_interval 5``) would otherwise end
    without any model, and a longer one would never consider its final weights.

    Args:
        validator: the evaluator.
        interval: epochs between validations (used when ``steps`` is ``None``).
        steps: training iterations between validations, or ``None``.
        exec_at_start: also validate before the first step.
    """

    def __init__(self, validator, interval: int = 1, steps: int | None = None, exec_at_start: bool = False) -> None:
        super().__init__(interval=steps or interval, validator=validator, epoch_level=steps is None,
                         exec_at_start=exec_at_start)
        self._validated_at: int | None = None
        self._trained = False

    def attach(self, engine: Engine) -> None:
        super().attach(engine)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._step_done)
        engine.add_event_handler(Events.COMPLETED, self._final)

    def _step_done(self, engine: Engine) -> None:
        self._trained = True

    def _final(self, engine: Engine) -> None:
        # a resumed run with nothing left to train took no step: its weights were validated before it stopped
        if self._trained and self._validated_at != engine.state.iteration:
            self(engine)

    def __call__(self, engine: Engine) -> None:
        if self.validator is not None:
            self.validator.state.trainer_iteration = engine.state.iteration
        self._validated_at = engine.state.iteration
        super().__call__(engine)
