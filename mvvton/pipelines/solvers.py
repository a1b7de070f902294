"""Few-step samplers for `MVVTONPipeline`, configured to start where the released sampler starts.

The released sampler noises the pre-warped composite to t = 999 and runs DDIM from there. With `"trailing"` timestep
spacing every solver here takes its first step at t = 999, so `prepare_latents` noises the start to exactly that level
(the released start) and the solver integrates from it. The training schedule (betas, prediction type) is copied from
the pipeline's scheduler.

    pipe.scheduler = fast_scheduler(pipe.scheduler, "dpmpp_2m")
    pipe(person, front, back, num_inference_steps=20)
"""

from __future__ import annotations

from typing import Any

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from mvvton.errors import InvalidArgumentError

# name -> (scheduler class, config overrides); all use "trailing" spacing (first step at t = 999)
FAST_SOLVERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "dpmpp_2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_sde": (DPMSolverMultistepScheduler, {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "unipc": (UniPCMultistepScheduler, {"solver_order": 2}),
    "ddim": (DDIMScheduler, {}),
}


def fast_scheduler(scheduler: SchedulerMixin, solver: str = "dpmpp_2m") -> SchedulerMixin:
    """A new scheduler of kind `solver` (see `FAST_SOLVERS`) with `scheduler`'s training schedule, trailing spacing.

    `"dpmpp_sde"` is stochastic: pass a `generator` to the pipeline for reproducible results.
    """
    if solver not in FAST_SOLVERS:
        raise InvalidArgumentError(f"unknown solver {solver!r}; choose one of {sorted(FAST_SOLVERS)}")
    scheduler_class, overrides = FAST_SOLVERS[solver]
    return scheduler_class.from_config(scheduler.config, timestep_spacing="trailing", **overrides)
