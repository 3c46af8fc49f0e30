"""The generative process: rectified flow in time t (t = 0 data, t = 1 noise), defined once.

    objective.py  the time convention, noise levels, the training loss (`from tenku import flow` reads it)
    sampler.py    ODE solvers with guidance; given frames held clean (`Conditioning`, one type for every mode)
"""

from tenku.flow.objective import (  # noqa: F401  (the convention is read as flow.X everywhere)
    drop_text,
    flow_loss,
    given_t,
    interpolate,
    null_text,
    per_frame,
    sample_t,
    sampling_schedule,
    shift_for_tokens,
    shift_t,
    training_loss,
    velocity_target,
)
