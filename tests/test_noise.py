"""Per-sample seeded noise (pndmkit.noise): batch-independent, torch-free, and torch's CPU generator bit for bit."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from pndmkit.noise import per_sample_noise, sample_seed, torch_randn

# SHA-256 of the float32 bytes of noises drawn by torch 2.x's CPU generator (x86-64, AVX2 kernel) through
# torch.randn(shape, generator=Generator().manual_seed(sample_seed(0, i))): the noises behind the shipped
# network references (noises 0-287 of the digits network) and the optimised grids of gmm2d and gmm32d.
SHIPPED = {
    (288, (1, 16, 16)): "3ca9e59dae3e30009ef04a2d647ffc0feab4993b00fc4f486b7ef4ef1f3ffe1a",
    (24, (2,)): "5a432edc9624a5fefd6f20bfb9e93210aba8089700eae97e598ba0e51450226b",
    (24, (32,)): "57a686eedc73faece66a5b77ae0d25b9e6b2f28455e657fb56e5b6f4c9a79969",
}


def _sha(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


@pytest.mark.parametrize("n, shape", list(SHIPPED))
def test_noises_are_the_ones_behind_the_shipped_results(n, shape):
    assert _sha(per_sample_noise(range(n), shape, seed=0)) == SHIPPED[(n, shape)]


@pytest.mark.parametrize("shape", [(1,), (2,), (5,), (16,), (17,), (40,), (1, 16, 16)])
def test_noise_i_depends_only_on_seed_and_i(shape):
    whole = per_sample_noise(range(12), shape, seed=3)
    assert whole.dtype == np.float32 and whole.shape == (12, *shape)
    np.testing.assert_array_equal(per_sample_noise([7, 2], shape, seed=3), whole[[7, 2]])
    for i in range(12):
        np.testing.assert_array_equal(per_sample_noise([i], shape, seed=3)[0], whole[i])
    assert not np.array_equal(per_sample_noise(range(12), shape, seed=4), whole)
    assert len({_sha(row) for row in whole}) == 12


def test_noises_look_standard_normal():
    x = per_sample_noise(range(200), (64,), seed=0).ravel().astype(np.float64)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02
    y = per_sample_noise(range(3000), (3,), seed=0).ravel().astype(np.float64)
    assert abs(y.mean()) < 0.04 and abs(y.std() - 1) < 0.03


def test_the_same_noises_without_torch():
    code = ("import sys, hashlib; sys.modules['torch'] = None\n"
            "from pndmkit.noise import per_sample_noise\n"
            "import pndmkit.studies.grid_opt\n"
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
            "for n, shape in [(288, (1, 16, 16)), (24, (2,)), (24, (32,))]:\n"
            "    print(hashlib.sha256(per_sample_noise(range(n), shape, 0).tobytes()).hexdigest())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == list(SHIPPED.values())


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (15,), (16,), (17,), (31,), (256,), (3, 8, 8)])
def test_bit_for_bit_torchs_cpu_generator(shape):
    torch = pytest.importorskip("torch")
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch's generic (non-AVX2) kernel draws other numbers for 16 or more elements")
    gen = torch.Generator(device="cpu")
    for i in range(40):
        s = sample_seed(11, i)
        gen.manual_seed(s)
        expected = torch.randn(shape, generator=gen).numpy()
        np.testing.assert_array_equal(torch_randn(shape, s), expected)
        np.testing.assert_array_equal(per_sample_noise([i], shape, 11)[0], expected)


def test_sample_seed_is_stable_and_63_bit():
    assert sample_seed(0, 0) == sample_seed(0, 0) != sample_seed(0, 1) != sample_seed(1, 0)
    assert all(0 <= sample_seed(s, i) < 2**63 for s in range(3) for i in range(50))
    assert per_sample_noise([], (4,), 0).shape == (0, 4)
