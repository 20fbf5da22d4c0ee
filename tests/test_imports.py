"""A run that needs no LoRA does not pay for importing peft: every grid cell is a fresh kernel, and peft (with the
parts of transformers it pulls in) takes 3-4 s of it."""

import subprocess
import sys


def test_importing_the_training_entry_point_leaves_peft_unloaded():
    code = "import sys, radcore.train, radcore.grid.profile; print('peft' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
