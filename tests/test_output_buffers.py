"""Models that hand back the same output storage every call, and callbacks that write into what they are given.

A preallocated output buffer (a CUDA graph's static output, an inference runtime's bound output, a user's ask/tell
loop writing into one array) must give the result of a model that returns new arrays, bit for bit, for every
method: the run keeps a copy of an output wherever the caller can still write into it. A model returning new arrays
is kept without a copy (the common case costs nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

import pndmkit
import pndmkit.run
from pndmkit.methods import METHODS
from pndmkit.schedules import DiscreteVP

torch = pytest.importorskip("torch")

SCHEDULE = DiscreteVP.linear()
FIXED_STEP = sorted(name for name, spec in METHODS.items() if not spec.adaptive)
STEPS = 6


def clean(x, t):
    return 0.1 * x + 0.01 * np.sin(t / 50.0)


class Buffered:
    """Writes every output into one array it keeps and returns it (``mode``: the array itself, a ``detach()`` /
    numpy view of it, or a slice view)."""

    def __init__(self, mode="same"):
        self.buf, self.mode, self.calls = None, mode, 0

    def __call__(self, x, t):
        out = clean(x, t)
        if self.buf is None:
            self.buf = torch.empty_like(out) if torch.is_tensor(out) else np.empty_like(out)
        self.buf[...] = out
        self.calls += 1
        if self.mode == "detach":
            return self.buf.detach() if torch.is_tensor(self.buf) else self.buf.view()
        return self.buf[:] if self.mode == "slice" else self.buf


def start(kind):
    x = np.random.default_rng(0).standard_normal((3, 4))
    return torch.from_numpy(x) if kind == "torch" else x


def equal(a, b):
    return torch.equal(a, b) if torch.is_tensor(a) else np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("method", FIXED_STEP)
def test_a_reused_output_buffer_gives_the_clean_result_through_sample(method, kind):
    x = start(kind)
    reference = pndmkit.sample(clean, x, schedule=SCHEDULE, method=method, steps=STEPS)
    model = Buffered()
    buffered = pndmkit.sample(model, x, schedule=SCHEDULE, method=method, steps=STEPS)
    assert model.calls == reference.nfe > 0
    assert equal(buffered.x, reference.x), method


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("method", FIXED_STEP)
def test_a_reused_output_buffer_gives_the_clean_result_through_ask_and_tell(method, kind):
    x = start(kind)
    reference = pndmkit.sample(clean, x, schedule=SCHEDULE, method=method, steps=STEPS)
    run = METHODS[method].build(SCHEDULE).start(x, reference.times)
    buf = torch.empty_like(x) if kind == "torch" else np.empty_like(x)
    while not run.done:
        point, t = run.ask()
        buf[...] = clean(point, t)
        run = run.tell(buf)
    assert run.nfe == reference.nfe
    assert equal(run.solution().x, reference.x), method


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("mode", ["detach", "slice"])
@pytest.mark.parametrize("method", ["ipndm", "f-pndm", "pec-s", "pie"])
def test_aliases_of_a_kept_buffer_are_copied_too(method, mode, kind):
    x = start(kind)
    reference = pndmkit.sample(clean, x, schedule=SCHEDULE, method=method, steps=STEPS)
    buffered = pndmkit.sample(Buffered(mode), x, schedule=SCHEDULE, method=method, steps=STEPS)
    assert equal(buffered.x, reference.x)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_new_outputs_are_kept_without_a_copy_and_buffers_with_one(kind, monkeypatch):
    copies = []
    real = pndmkit.run.copy_array
    monkeypatch.setattr(pndmkit.run, "copy_array", lambda a: copies.append(1) or real(a))
    x = start(kind)
    fresh = pndmkit.sample(clean, x, schedule=SCHEDULE, method="ipndm", steps=STEPS)
    assert copies == []  # the common case: the run keeps the model's own new arrays
    buffered = pndmkit.sample(Buffered(), x, schedule=SCHEDULE, method="ipndm", steps=STEPS)
    assert len(copies) == fresh.nfe and equal(buffered.x, fresh.x)
    copies.clear()
    pndmkit.sample(Buffered(), x, schedule=SCHEDULE, method="dpm-solver++-2m", steps=STEPS)
    assert copies == []  # a data-prediction method converts every output into a new array: nothing to copy


def test_an_inference_mode_buffer_is_copied():
    x = start("torch")
    reference = pndmkit.sample(clean, x, schedule=SCHEDULE, method="ipndm", steps=STEPS)
    with torch.inference_mode():
        buffered = pndmkit.sample(Buffered(), x.clone(), schedule=SCHEDULE, method="ipndm", steps=STEPS)
    assert torch.equal(buffered.x, reference.x)


@pytest.mark.parametrize("method", ["ipndm", "f-pndm", "plms", "deis-3"])
def test_the_diffusers_scheduler_copies_a_reused_model_output(method):
    pytest.importorskip("diffusers")
    from pndmkit.integrations.diffusers import PNDMKitScheduler

    def loop(model):
        sched = PNDMKitScheduler(method=method)
        sched.set_timesteps(8)
        sample = start("torch").float()
        for t in sched.timesteps:
            sample = sched.step(model(sample, float(t)), t, sample).prev_sample
        return sample

    model = Buffered()
    assert torch.equal(loop(clean), loop(model)) and model.calls >= 8


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("target", ["x", "e"])
def test_a_callback_that_writes_into_its_arguments_is_named(kind, target):
    def meddle(t, x, e):
        arrays = {"x": x, "e": e}
        arrays[target][...] = 0.0

    with pytest.raises((RuntimeError, ValueError), match=r"callback 'test_a_callback.*meddle'.*(modified|wrote)"):
        pndmkit.sample(clean, start(kind), schedule=SCHEDULE, method="ipndm", steps=STEPS, callback=meddle)


def test_a_callback_that_only_reads_changes_nothing():
    seen = []
    x = start("torch")
    a = pndmkit.sample(clean, x, schedule=SCHEDULE, method="ipndm", steps=STEPS)
    b = pndmkit.sample(clean, x, schedule=SCHEDULE, method="ipndm", steps=STEPS,
                       callback=lambda t, x, e: seen.append((t, x.clone(), e.clone())))
    assert torch.equal(a.x, b.x) and len(seen) == STEPS and torch.equal(seen[-1][1], a.x)


def test_a_model_writing_into_its_input_is_still_named_as_the_model():
    def writes(x, t):
        x.mul_(1.0)
        return clean(x, t)

    with pytest.raises(RuntimeError, match="the model"):
        pndmkit.sample(writes, start("torch"), schedule=SCHEDULE, method="ipndm", steps=STEPS)


def test_k_diffusion_callback_writing_into_denoised_changes_nothing():
    from pndmkit.integrations import k_diffusion as kd

    sigmas = torch.tensor([80.0, 20.0, 5.0, 1.0, 0.3, 0.05, 0.0], dtype=torch.float64)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3, 4))) * 80
    denoiser = lambda y, s: torch.tanh(y) * 0.5  # noqa: E731
    seen = []

    def doubles(d):
        seen.append(d["i"])
        d["denoised"].mul_(2.0)

    for name in ("sample_lms", "sample_euler", "sample_heun", "sample_dpmpp_2m"):
        seen.clear()
        plain = getattr(kd, name)(denoiser, x, sigmas, disable=True)
        meddled = getattr(kd, name)(denoiser, x, sigmas, disable=True, callback=doubles)
        assert torch.equal(plain, meddled), name
        assert seen == list(range(len(sigmas) - 1)), name


def test_the_benchmark_model_times_the_common_case_with_no_copy(monkeypatch):
    """analysis.bench's model hands over a new tensor per call, as a network does: pndmkit.sample keeps them
    without a copy, so the benchmark times the sampler's work, not the copy a reused buffer costs."""
    import torch

    from analysis.bench import FreshOutputs, sample_loop

    copies = []
    real = pndmkit.run.copy_array
    monkeypatch.setattr(pndmkit.run, "copy_array", lambda a: copies.append(1) or real(a))
    loop, nfe = sample_loop(torch, "plms", (2, 3, 4, 4), [999.0, 749.0, 499.0, 249.0, 0.0])
    copies.clear()
    loop.prepare()
    assert loop().nfe == nfe and copies == []
    model = FreshOutputs(torch, (2, 3))
    model.refill(2)
    a, b, c = model(), model(), model()
    assert a.data_ptr() != b.data_ptr() and not model.pool and c.abs().sum() == 0


@pytest.mark.parametrize("kind", ["numpy", "numpy-float32", "torch"])
def test_pf_with_a_reused_output_buffer_gives_the_clean_result(kind):
    # pf hands host float64 arrays to scipy's RK45, which keeps them as stages: a buffer the model overwrites
    # must be copied first (the default DiscreteVP grid ends at t=-1, so pf integrates eps itself in s)
    x = start("torch" if kind == "torch" else "numpy")
    x = x.astype(np.float32) if kind == "numpy-float32" else x
    reference = pndmkit.sample(clean, x, schedule=SCHEDULE, method="pf")
    model = Buffered()
    buffered = pndmkit.sample(model, x, schedule=SCHEDULE, method="pf")
    assert model.calls == buffered.nfe == reference.nfe > 0
    assert equal(buffered.x, reference.x)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_pf_callback_that_writes_into_x_is_refused(kind):
    def meddle(t, x, e):
        x[...] = 0.0

    with pytest.raises((RuntimeError, ValueError), match=r"callback '.*meddle'.*(modified the x|wrote into)"):
        pndmkit.sample(clean, start(kind), schedule=SCHEDULE, method="pf", callback=meddle)
    seen = []
    reading = pndmkit.sample(clean, start(kind), schedule=SCHEDULE, method="pf",
                             callback=lambda t, x, e: seen.append((t, x, e)))
    assert len(seen) == 1 and seen[0][0] == -1.0 and seen[0][2] is None and equal(seen[0][1], reading.x)


#: pf chooses its own steps
STEPS_OF = {"ipndm": {"steps": STEPS}, "pf": {}}


@pytest.mark.parametrize("method", ["ipndm", "pf"])
def test_a_read_only_error_is_attributed_only_as_far_as_numpy_tells(method):
    own = np.zeros(3)
    own.flags.writeable = False

    def writes_own(x, t):
        own[0] = t  # the model's own read-only array: x is untouched
        return clean(x, t)

    def writes_x(x, t):
        x *= 0.5
        return clean(x, t)

    for model in (writes_own, writes_x):
        with pytest.raises(ValueError, match=r"^model raised a read-only error at t=[0-9.]+ \(.*read-only\); the x it "
                                             r"is given is the sampler's state and read-only: if the model wrote into "
                                             r"x, return a new array") as info:
            pndmkit.sample(model, start("numpy"), schedule=SCHEDULE, method=method, **STEPS_OF[method])
        assert "read-only" in str(info.value.__cause__) and "wrote into its input" not in str(info.value)


@pytest.mark.parametrize("method", ["ipndm", "pf"])
def test_a_callback_read_only_error_is_attributed_only_as_far_as_numpy_tells(method):
    own = np.zeros(3)
    own.flags.writeable = False

    def writes_own(t, x, e):
        own[0] = t

    def writes_x(t, x, e):
        x[...] = 0.0

    for callback in (writes_own, writes_x):
        with pytest.raises(ValueError, match=rf"^callback '.*{callback.__name__}' raised a read-only error at t=.* "
                                             r"the x and e' it is given are the run's own arrays and read-only: if it "
                                             r"wrote into them, copy them") as info:
            pndmkit.sample(clean, start("numpy"), schedule=SCHEDULE, method=method, callback=callback,
                           **STEPS_OF[method])
        assert "read-only" in str(info.value.__cause__)
