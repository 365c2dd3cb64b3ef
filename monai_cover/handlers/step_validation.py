"""Segmentation validation every N epochs or every N training steps: MONAI's ``ValidationHandler`` that also tells
the evaluator at which training step it runs."""

from __future__ import annotations

from ignite.engine import Engine
from monai.handlers import ValidationHandler

__all__ = ["StepValidation"]


class StepValidation(ValidationHandler):
    """:class:`monai.handlers.ValidationHandler` run every ``interval`` epochs, or with ``steps`` set every ``steps``
    training iterations (a step budget over a large dataset: one epoch can be hours; over 3 labeled volumes one
    epoch is one step). Before each run the evaluator's ``state.trainer_iteration`` is set to the trainer's
    iteration, so per-round records (:class:`~monai_cover.handlers.DiceCurvePlot`) are placed in steps even when
    an epoch holds several rounds.

    Args:
        validator: the evaluator.
        interval: epochs between validations (used when ``steps`` is ``None``).
        steps: training iterations between validations, or ``None``.
        exec_at_start: also validate before the first step.
    """

    def __init__(self, validator, interval: int = 1, steps: int | None = None, exec_at_start: bool = False) -> None:
        super().__init__(interval=steps or interval, validator=validator, epoch_level=steps is None,
                         exec_at_start=exec_at_start)

    def __call__(self, engine: Engine) -> None:
        if self.validator is not None:
            self.validator.state.trainer_iteration = engine.state.iteration
        super().__call__(engine)
