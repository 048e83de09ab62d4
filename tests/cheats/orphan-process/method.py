import subprocess
import sys
import time

import torch


class Cheat:
    """Leaves a process behind: a new session escapes a process-group kill.

    The process carries `marker` on its command line, so the test can find it (the sandboxed
    fit cannot write a pid file outside its job folder).
    """

    tracks = ("read",)

    def __init__(self, marker: str = ""):
        self.marker = marker

    def fit(self, model, data):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", self.marker], start_new_session=True)
        time.sleep(1.5)  # long enough for the test to see it alive
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)
