"""Recorded bags: MCAP files of bus traffic (record, info, plot, export, replay, check-policy).

Every module here imports mcap, matplotlib or onnxruntime freely: the package
is only imported inside the ``hil bag`` commands, so ``hil --help`` stays fast.
"""
