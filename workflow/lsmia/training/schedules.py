"""How the smoothing factor α_t changes over training epochs."""

from __future__ import annotations

from typing import Sequence

SCHEDULES = ("paper", "none", "linear")


def alpha_at(schedule: str, alpha: float, epoch: int, num_epochs: int,
             milestones: Sequence[int] | None = None) -> float:
    """α_t for ``epoch`` (counted from 0) of ``num_epochs``.

    - ``none``: α in every epoch.
    - ``linear``: from 0 in the first epoch to α in the last, ``α·epoch/(num_epochs − 1)``.
    - ``paper``: the reference warm-up for negative α. With ``start = num_epochs // 2`` and
      ``jump`` = the first learning-rate milestone if ``milestones`` is given, else
      ``round(0.75·num_epochs)``: epochs before ``start`` use 0; epochs from ``start`` to
      ``jump − 1`` use ``α·(epoch + 1 − start)/(num_epochs − start)``; epochs from ``jump`` on use α
      (a jump, at the learning-rate drop). For 100 epochs and milestone 75 this is exactly the
      paper's 0 (epochs 0–49), α·(epoch − 49)/50 (50–74, reaching α/2), α (75–99). If ``jump`` is
      not after ``start``, α applies from ``jump`` on.
    """
    if isinstance(num_epochs, bool) or not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs: expected a positive integer, got {num_epochs!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < num_epochs:
        raise ValueError(f"epoch: expected an integer in 0..{num_epochs - 1}, got {epoch!r}")
    if schedule == "none":
        return float(alpha)
    if schedule == "linear":
        return float(alpha) * (epoch / (num_epochs - 1) if num_epochs > 1 else 1.0)
    if schedule == "paper":
        start = num_epochs // 2
        jump = int(milestones[0]) if milestones else round(0.75 * num_epochs)
        if epoch >= jump:
            return float(alpha)
        if epoch >= start:
            return float(alpha) * (epoch + 1 - start) / (num_epochs - start)
        return 0.0
    raise ValueError(f"alpha_schedule: unknown schedule {schedule!r}; "
                     f"expected one of {list(SCHEDULES)}")
