import subprocess
import sys

import torch


class Cheat:
    """Leaves a process behind: a new session escapes a process-group kill."""

    tracks = ("read",)

    def __init__(self, pid_file: str = ""):
        self.pid_file = pid_file

    def fit(self, model, data):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        with open(self.pid_file, "w") as f:
            f.write(str(proc.pid))
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)
