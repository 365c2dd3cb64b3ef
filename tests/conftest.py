"""Settings shared by every test package."""

import os

import torch

# torch.compile's inductor compiles in a pool of worker processes by default; on 2 shared cores (the suite runs on two
# workers) the pool's start-up and contention made the compile tests several times slower. In-process compilation.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

# The unit tests use tiny tensors, where intra-op threads gain nothing. On a small shared machine (2 cores with other
# jobs running) OpenMP spin-waiting under oversubscription made them ~10x slower (2 min instead of ~11 s). One thread
# keeps the suite fast; results are unchanged.
torch.set_num_threads(1)
