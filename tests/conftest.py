"""Settings shared by every test package."""

import torch

# The unit tests use tiny tensors, where intra-op threads gain nothing. On a small shared machine (2 cores with other
# jobs running) OpenMP spin-waiting under oversubscription made them ~10x slower (2 min instead of ~11 s). One thread
# keeps the suite fast; results are unchanged.
torch.set_num_threads(1)
