"""searec.training.memory.footprint: the meta-device build before a model is built."""

from __future__ import annotations


def test_the_memory_estimate_builds_silently_without_drawing_or_importing_dynamo():
    """footprint() builds the model on the meta device before the real build: its
    warnings would repeat the real build's, and torch's meta normal_ imports
    torch._dynamo (seconds at every start-up); the random state is left as it was."""
    import subprocess
    import sys

    script = (
        "import sys, warnings, torch\n"
        "from torch import nn\n"
        "from searec.training.memory import footprint\n"
        "def build():\n"
        "    warnings.warn('said by the build')\n"
        "    return nn.Sequential(nn.Embedding(1000, 16), nn.Linear(16, 4))\n"
        "state = torch.get_rng_state()\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    found = footprint(build)\n"
        "assert not seen, [str(w.message) for w in seen]\n"
        "assert found.parameters == (1000 * 16 + 16 * 4 + 4) * 4\n"
        "assert found.largest == ('0.weight', (1000, 16))\n"
        "assert torch.equal(torch.get_rng_state(), state)\n"
        "assert 'torch._dynamo' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", script], check=True)
