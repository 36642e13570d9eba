"""Cells as tasks: what a notebook cell reads and assigns (:mod:`.analysis`), how it
travels (:mod:`.job`), how a worker runs it (:mod:`.runner`) and how its rich output comes
back (:mod:`.display`, :mod:`.mplbackend`). Nothing here imports IPython: workers need not
have it; the kernel side lives in :mod:`jupyter_orch.kernel`.
"""
